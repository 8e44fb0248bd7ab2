"""gateway: the front door, on the hosts of the `gateways` group (the only ones that face browsers).

nginx from Debian terminates TLS 1.3 and nothing older; plain HTTP only redirects. Its certificate
comes from Vault's PKI engine: the gateway makes its key and a CSR itself (tos-gateway), Vault
signs it for the gateway's own name, short-lived, and a timer on the gateway renews it past two
thirds of its life, nginx reloaded (not restarted). The key never leaves the gateway; key and
chain share one 0600 file. A site may bring its own certificate instead (gateway_own_certificate).
The gateway keeps no user data on its disk: a rebuilt or added gateway loses nothing.
"""

import json
from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files, python, server, systemd
from pyinfra.operations.util import any_changed

from toskit import operations
from toskit.defaults import ALL_DEFAULTS
from toskit.gateway import TOOL_SOURCE
from toskit.facts import GatewayCertificate, VaultLogin
from toskit.schema import DataError
from toskit.schema.net import Address, OneHostNetwork, network_of
from toskit.schema.types import (DurationText, Hostname, LocalPath, MountName, NonEmpty, Optional, PackageName,
                                 duration_seconds, whole)
from toskit.templating import TEMPLATES
from toskit.vault_data import CREDENTIALS, HOST_VAULT_CA, VaultAccessData

# The data key listing this role's packages (deploy.py installs them all in one transaction).
PACKAGES_KEY = "gateway_packages"
TOOL = "/usr/local/sbin/tos-gateway"
SETTINGS = "/etc/tos/gateway.json"
CERTIFICATE_DIR = "/etc/tos/tls"
CERTIFICATE = f"{CERTIFICATE_DIR}/gateway.pem"  # key and chain in one file (0600)
NGINX_SITE = "/etc/nginx/sites-available/tos-gateway"
DEBIAN_DEFAULT_SITE = "/etc/nginx/sites-enabled/default"


class Data(VaultAccessData):  # how hosts reach Vault (toskit/vault_data.py), checked here too
    # nginx, and what tos-gateway needs (hvac for Vault, cryptography for its key and CSR).
    gateway_packages: NonEmpty(PackageName) = ["nginx", "python3-hvac", "python3-cryptography"]
    # The name browsers reach the gateway by, and its certificate's only name. Required.
    gateway_server_name: Optional[Hostname] = None
    # Lifetime of a certificate Vault signs; renewed past two thirds of it. Units: s, m, h.
    gateway_cert_ttl: DurationText(maximum=90 * 86400, minimum=3600) = "72h"
    # How often the gateway's timer looks at its certificate's age.
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


DEFAULTS = Data.defaults()


def gateway_access(data):
    from toskit.vault_gateway import GatewayAccess
    return GatewayAccess(gateway=host.name, cidr=data.gateway_vault_cidr or network_of(data.cluster_ip),
                         server_name=data.gateway_server_name, cert_ttl=data.gateway_cert_ttl,
                         secret_id_ttl=data.vault_secret_id_ttl, pki_mount=data.gateway_pki_mount,
                         cluster_pki_mount=data.vault_cluster_pki_mount,
                         cluster_cert_ttl=data.vault_cluster_cert_ttl)


def gateway_json(data, settings, access) -> str:
    """/etc/tos/gateway.json: what tos-gateway needs (no secret in it)."""
    return json.dumps({
        "vault_addr": data.vault_addr or settings.addr, "vault_ca_file": HOST_VAULT_CA if settings.ca_file else None,
        "approle_mount": settings.approle_mount, "pki_mount": access.pki_mount, "pki_role": access.role,
        "server_name": access.server_name, "cert_ttl": access.cert_ttl, "certificate": CERTIFICATE,
    }, indent=2, sort_keys=True) + "\n"


def apply_changes(settings, access) -> None:
    from toskit.vault_gateway import apply
    apply(settings, settings.client(), access)


@deploy("TOS gateway", data_defaults=ALL_DEFAULTS)
def gateway():
    from toskit.vault import VaultError, VaultSettings
    Data.check(host.name, host.data)
    data = host.data
    if data.gateway_server_name is None:
        raise DataError(host.name, "gateway_server_name", None, "is not set, and a gateway's certificate names it",
                        "set gateway_server_name for the gateways (group_data), e.g. 'tos.example.org'")
    ttl, interval = duration_seconds(data.gateway_cert_ttl), duration_seconds(data.gateway_renew_interval)
    if not data.gateway_own_certificate and interval + 60 >= ttl / 3:
        raise DataError(host.name, "gateway_renew_interval", data.gateway_renew_interval,
                        f"leaves too little time to renew a certificate that lives {data.gateway_cert_ttl} "
                        f"(renewal starts past two thirds of its life)",
                        "set it below a third of gateway_cert_ttl, e.g. 1h for 72h")
    files.directory(name="/etc/tos", path="/etc/tos", user="root", group="root", mode="755")
    files.directory(name="The gateway's certificate folder (root only)", path=CERTIFICATE_DIR,
                    user="root", group="root", mode="700")
    if data.gateway_own_certificate:
        certificate = operations.put(name="The site's own certificate (key and chain)", mode="600",
                                     src=data.gateway_own_certificate, dest=CERTIFICATE)
        renewal = False
    else:
        certificate = _vault_certificate(data, VaultSettings, VaultError)
        renewal = True
    site = operations.template(name="nginx: TLS 1.3 only, HSTS, HTTP redirected",
                               src=TEMPLATES / "gateway" / "nginx-tos-gateway.conf.j2", dest=NGINX_SITE,
                               server_name=data.gateway_server_name, certificate=CERTIFICATE,
                               hsts_max_age=data.gateway_hsts_max_age,
                               portal={"port": data.portal_port, "sign_in_rate": data.portal_sign_in_rate}
                               if data.portal_enabled else None)
    enabled = files.link(name="nginx: the gateway's site on", path="/etc/nginx/sites-enabled/tos-gateway",
                         target=NGINX_SITE)
    # A link Debian's package makes (also on a first deploy, after the plan saw no nginx: so the
    # reload, which our new site brings about then, removes it too).
    default = files.link(name="nginx: Debian's default site off", path=DEBIAN_DEFAULT_SITE, present=False)
    systemd.service(name="Run nginx", service="nginx.service", running=True, enabled=True)
    server.shell(name="Reload nginx for its new configuration (connections kept)",
                 commands=[f"rm -f {DEBIAN_DEFAULT_SITE} && nginx -t -q && systemctl reload nginx"],
                 _if=any_changed(*[op for op in (site, enabled, default, certificate) if op is not None]))
    service = operations.template(name="Certificate renewal service", src=TEMPLATES / "gateway" / "tos-gateway-renew.service.j2",
                                  dest="/etc/systemd/system/tos-gateway-renew.service", certificate_dir=CERTIFICATE_DIR)
    timer = operations.template(name="Certificate renewal timer", src=TEMPLATES / "gateway" / "tos-gateway-renew.timer.j2",
                                dest="/etc/systemd/system/tos-gateway-renew.timer", interval=data.gateway_renew_interval)
    systemd.daemon_reload(name="Load the renewal units", _if=any_changed(service, timer))
    systemd.service(name=f"Renewal timer {'on' if renewal else 'off (the site renews its own certificate)'}",
                    service="tos-gateway-renew.timer", running=renewal, enabled=renewal)


def _vault_certificate(data, VaultSettings, VaultError):
    """The gateway's AppRole and PKI role in Vault, its enrolment, and a certificate when due."""
    settings = VaultSettings.from_data(host.name, data)
    access = gateway_access(data)
    from toskit.vault_gateway import drift
    try:
        changes = drift(settings, settings.client(), access)
    except VaultError as e:
        key, value = next(((k, v) for k, v in (("gateway_pki_mount", access.pki_mount),
                                                ("vault_cluster_pki_mount", access.cluster_pki_mount)) if k in str(e)),
                          ("vault_token_file", settings.token_source))
        raise DataError(host.name, key, value, str(e), "fix what the message names (Vault's address, CA, token "
                        "or a mount: toskit/vault_data.py, roles/gateway.py); nothing was changed") from None
    if changes:
        python.call(name=f"Vault: {'; '.join(changes)}", function=apply_changes, settings=settings, access=access)
    if settings.ca_file:
        operations.put(name="Vault's CA", src=settings.ca_file, dest=HOST_VAULT_CA, mode="644")
    operations.put(name="Settings of tos-gateway", src=StringIO(gateway_json(data, settings, access)),
                   dest=SETTINGS, mode="644")
    operations.put(name="Install tos-gateway", src=str(TOOL_SOURCE), dest=TOOL, mode="755")
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
    # Due for the name this deploy sets (a changed name is renewed now, not by the timer later).
    due = host.get_fact(GatewayCertificate, tool=TOOL, server_name=data.gateway_server_name)
    if due == "valid":
        return None
    return server.shell(name=f"The gateway's certificate from Vault ({due or 'none yet'})", commands=[f"{TOOL} renew"])
