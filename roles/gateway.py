"""gateway: the front door, on the hosts of the `gateways` group (the only ones that face browsers).

nginx from Debian terminates TLS 1.3 and nothing older; plain HTTP only redirects. Its certificate
comes from Vault's PKI engine: the gateway makes its key and a CSR itself (tos-cert,
toskit/host_certificates.py), Vault signs it for the gateway's own name, short-lived, and a timer
on the gateway renews it past two thirds of its life, nginx reloaded (not restarted). The key never
leaves the gateway; key and chain share one 0600 file. A site may bring its own certificate instead
(gateway_own_certificate). Its client certificate towards the nodes (mutual TLS) comes the same way
from the cluster CA (vault_cluster_pki_mount), renewed by the same timer; the broker (in the portal,
which is not root) reads it through a group of its own, tos-broker, and nothing else does.
The gateway keeps no user data on its disk: a rebuilt or added gateway loses nothing.
"""

from io import StringIO

from pydantic import model_validator
from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files, python, server, systemd

from toskit import nginx, operations
from toskit.defaults import ALL_DEFAULTS
from toskit.facts import VaultLogin
from toskit.gateway import BROKER_DIR, BROKER_GROUP, CLUSTER_CLIENT_CERTIFICATE
from toskit.host_certificates import (CERTIFICATE_DIR, TOOL, Certificate, check_renewal, install, put_cluster_ca,
                                     renew_due)
from toskit.node.nodeapi import CHANGE_TIMEOUT
from toskit.schema import DataError
from toskit.schema.model import refuse_key
from toskit.schema.net import Address, OneHostNetwork, network_of
from toskit.schema.types import DurationText, Hostname, LocalPath, MountName, NonEmpty, Optional, PackageName, whole
from toskit.templating import TEMPLATES
from toskit.vault_data import CREDENTIALS, HOST_VAULT_CA, VaultAccessData, blamed_key

# The data key listing this role's packages (deploy.py installs them all in one transaction).
PACKAGES_KEY = "gateway_packages"
CERTIFICATE = f"{CERTIFICATE_DIR}/gateway.pem"  # key and chain in one file (0600)
NGINX_SITE = nginx.site_path("tos-gateway")
# nginx waits for POST /session/open as long as the broker may wait for a node's change (the node's
# limit, the broker's margin over it) and a round of reports before it.
SESSION_OPEN_TIMEOUT = max(CHANGE_TIMEOUT.values()) + 60


class Data(VaultAccessData):  # how hosts reach Vault (toskit/vault_data.py), checked here too
    # nginx, and what tos-cert needs (hvac for Vault, cryptography for its key and CSR).
    gateway_packages: NonEmpty(PackageName) = ["nginx", "python3-hvac", "python3-cryptography"]
    # The name browsers reach the gateway by, and its certificate's only name. Required.
    gateway_server_name: Optional[Hostname] = None
    # Lifetime of a certificate Vault signs; renewed past two thirds of it. Units: s, m, h.
    gateway_cert_ttl: DurationText(maximum=90 * 86400, minimum=3600) = "72h"
    # How often the gateway's timer looks at its certificates' age (the browser-facing one, and the
    # client one towards the nodes): below a third of the shortest lifetime.
    gateway_renew_interval: DurationText(86400) = "1h"
    # Strict-Transport-Security max-age (seconds): browsers use only HTTPS for this long.
    gateway_hsts_max_age: whole(0, 2**31 - 1) = 63072000
    # Where Vault's PKI engine for the gateways' certificates is mounted.
    gateway_pki_mount: MountName = "pki"
    # The address the gateway's Vault requests come from, as Vault sees it; None: its cluster_ip.
    gateway_vault_cidr: Optional[OneHostNetwork] = None
    # Where the audits, on the operator's machine, reach the gateway's HTTPS (a browser's view);
    # None: its ssh_hostname (the lab forwards the port to this machine's loopback).
    gateway_audit_address: Optional[Address] = None
    gateway_audit_port: whole(1, 65535) = 443
    # A certificate of the site's own instead of Vault's: one PEM file on the operator's machine
    # with the key and the chain (the deploy installs it 0600; no renewal here then). None: Vault.
    gateway_own_certificate: Optional[LocalPath] = None

    @model_validator(mode="after")
    def _two_cas(self):
        # The browsers' CA and the cluster CA apart: else nodes' certificates would chain to a CA
        # browsers trust, and a browser-facing certificate could open a node's door.
        if self.vault_cluster_pki_mount == self.gateway_pki_mount:
            refuse_key("vault_cluster_pki_mount", self.vault_cluster_pki_mount,
                       "is the gateways' browser-facing CA mount (gateway_pki_mount) too",
                       "give the cluster CA a mount of its own, e.g. 'tos-cluster-pki'")
        return self


DEFAULTS = Data.defaults()


def gateway_access(data):
    from toskit.vault_gateway import GatewayAccess
    return GatewayAccess(gateway=host.name, cidr=data.gateway_vault_cidr or network_of(data.cluster_ip),
                         server_name=data.gateway_server_name, cert_ttl=data.gateway_cert_ttl,
                         secret_id_ttl=data.vault_secret_id_ttl, pki_mount=data.gateway_pki_mount,
                         cluster_pki_mount=data.vault_cluster_pki_mount,
                         cluster_cert_ttl=data.vault_cluster_cert_ttl)


def apply_changes(settings, access) -> None:
    from toskit.vault_gateway import apply
    apply(settings, settings.client(), access)


@deploy("TOS gateway", data_defaults=ALL_DEFAULTS)
def gateway():
    from toskit.vault import VaultSettings
    Data.check(host.name, host.data)
    data = host.data
    if data.gateway_server_name is None:
        raise DataError(host.name, "gateway_server_name", None, "is not set, and a gateway's certificate names it",
                        "set gateway_server_name for the gateways (group_data), e.g. 'tos.example.org'")
    settings = VaultSettings.from_data(host.name, data)
    access = gateway_access(data)
    certificates = gateway_certificates(data, access)
    check_renewal(host.name, "gateway_renew_interval", data.gateway_renew_interval, certificates)
    files.directory(name="/etc/tos", path="/etc/tos", user="root", group="root", mode="755")
    server.group(name="The broker's group (reads the client certificate towards the nodes)", group=BROKER_GROUP,
                 system=True)
    files.directory(name="The broker's folder", path=BROKER_DIR, user="root", group=BROKER_GROUP, mode="750")
    install(data.vault_addr or settings.addr, settings, certificates, data.gateway_renew_interval)  # it enrols
    _vault_access(data, settings, access)
    put_cluster_ca(data)  # what its broker checks nodes' certificates by
    _retire_tos_gateway()
    renewed = renew_due(certificates)
    certificate = renewed.get("gateway") or (
        operations.put(name="The site's own certificate (key and chain)", mode="600",
                       src=data.gateway_own_certificate, dest=CERTIFICATE) if data.gateway_own_certificate else None)
    site = operations.template(name="nginx: TLS 1.3 only, HSTS, HTTP redirected",
                               src=TEMPLATES / "gateway" / "nginx-tos-gateway.conf.j2", dest=NGINX_SITE,
                               server_name=data.gateway_server_name, certificate=CERTIFICATE,
                               hsts_max_age=data.gateway_hsts_max_age,
                               portal={"port": data.portal_port, "sign_in_rate": data.portal_sign_in_rate,
                                       "open_timeout": SESSION_OPEN_TIMEOUT} if data.portal_enabled else None)
    nginx.site_on("tos-gateway", site, certificate)


def gateway_certificates(data, access) -> dict:
    """tos-cert's certificates on a gateway: its browser-facing one (unless the site brings its own)
    and its client certificate towards the nodes."""
    certificates = {} if data.gateway_own_certificate else {
        "gateway": Certificate.signed_by(access.pki, CERTIFICATE, "nginx")}
    certificates["cluster"] = Certificate.signed_by(access.cluster, CLUSTER_CLIENT_CERTIFICATE, None, BROKER_GROUP)
    return certificates


def _vault_access(data, settings, access) -> None:
    """The gateway's AppRole and PKI roles in Vault, and its enrolment."""
    from toskit.vault import VaultError
    from toskit.vault_gateway import drift
    try:
        changes = drift(settings, settings.client(), access)
    except VaultError as e:
        key, value = blamed_key(e, ("vault_token_file", settings.token_source), ("gateway_pki_mount", access.pki_mount),
                                ("vault_cluster_pki_mount", access.cluster_pki_mount))
        raise DataError(host.name, key, value, str(e), "fix what the message names (Vault's address, CA, token "
                        "or a mount: toskit/vault_data.py, roles/gateway.py); nothing was changed") from None
    if changes:
        python.call(name=f"Vault: {'; '.join(changes)}", function=apply_changes, settings=settings, access=access)
    if settings.ca_file:
        operations.put(name="Vault's CA", src=settings.ca_file, dest=HOST_VAULT_CA, mode="644")
    operations.put(name="Credential folder at boot", src=StringIO(f"d {CREDENTIALS} 0700 root root -\n"),
                   dest="/etc/tmpfiles.d/tos-vault.conf", mode="644")
    files.directory(name="Credential folder (tmpfs, root only)", path=CREDENTIALS, user="root", group="root",
                    mode="700")
    from toskit.vault import enrol, secret_id_fresh
    # Enrolled again when its login fails, its role changed, or its secret_id is past half its life.
    if host.get_fact(VaultLogin, tool=TOOL) != "ok" or any("approle" in c for c in changes) or \
            not secret_id_fresh(settings, settings.client(), access.role, data.vault_secret_id_ttl):
        python.call(name=f"Enrol {host.name} with Vault (AppRole secret_id by response wrapping)",
                    function=enrol, settings=settings, role=access.role, tool=f"{TOOL} enrol")


def _retire_tos_gateway() -> None:
    """What deploys before tos-cert installed (tos-gateway did the gateway's certificate alone), and the
    client certificate before the broker read it (root's alone, in the certificates' folder)."""
    systemd.service(name="Retired renewal timer off", service="tos-gateway-renew.timer", running=False, enabled=False)
    for path in ("/etc/systemd/system/tos-gateway-renew.timer", "/etc/systemd/system/tos-gateway-renew.service",
                 "/usr/local/sbin/tos-gateway", "/etc/tos/gateway.json", f"{CERTIFICATE_DIR}/cluster-client.pem"):
        files.file(name=f"Retired: {path}", path=path, present=False)
