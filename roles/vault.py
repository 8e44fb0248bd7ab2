"""vault: tenants' transit keys and each node's AppRole, made from the operator's machine with hvac
(toskit/vault.py), and the node's enrolment: its secret_id arrives by response wrapping and is
kept in RAM only (/run/tos/vault). Then the node's certificate for the gateways' mutual TLS, from
the cluster CA (tos-cert: the node makes its key, Vault signs its own name; a timer renews it).

Vault is read while planning (so `--dry` shows what would change) and written only when the
deploy runs. A token without the rights, or an unreachable Vault, stops the deploy before any
host is changed.
"""

import json
from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files, python

from toskit import operations
from toskit.defaults import ALL_DEFAULTS
from toskit.facts import VaultLogin
from toskit.schema import DataError
from toskit.schema.net import OneHostNetwork, network_of
from toskit.host_certificates import CERTIFICATE_DIR, Certificate, check_renewal, install, renew_due
from toskit.schema.types import DurationText, MountName, NonEmpty, Optional, PackageName
from toskit.tenants import tenants_of
from toskit.vault_data import CREDENTIALS, HOST_VAULT_CA, VaultAccessData, blamed_key

# toskit.vault (hvac, hence ssl) is imported inside the functions: pyinfra's CLI must patch ssl
# for gevent before anything imports it, and `roles` is imported early by toskit.check and tests.


# The data key listing this role's packages (deploy.py installs them all in one transaction).
PACKAGES_KEY = "vault_packages"
CLUSTER_CERTIFICATE = f"{CERTIFICATE_DIR}/cluster.pem"  # the node's key and chain (0600)


class Data(VaultAccessData):  # how hosts reach Vault (toskit/vault_data.py), checked here too
    # What tos-cert needs on a node: hvac for Vault, cryptography for its key and CSR.
    vault_packages: NonEmpty(PackageName) = ["python3-hvac", "python3-cryptography"]
    # How often a node's timer looks at its certificate's age: below a third of vault_cluster_cert_ttl.
    vault_cert_renew_interval: DurationText(86400) = "1h"
    # Where the transit engine (the tenants' keys) is mounted.
    vault_transit_mount: MountName = "transit"
    # The address a node's Vault requests come from, as Vault sees it: its AppRole's secret_id
    # and tokens work from there only. None: the node's cluster_ip alone (/32, /128).
    vault_node_cidr: Optional[OneHostNetwork] = None


DEFAULTS = Data.defaults()


def node_access(data):
    from toskit.vault import NodeAccess
    tenants = tenants_of(host.name, data)
    return NodeAccess(node=host.name, cidr=data.vault_node_cidr or network_of(data.cluster_ip),
                      tenant_ids=tuple(t.id for t in tenants), enabled_ids=tuple(t.id for t in tenants if t.enabled),
                      secret_id_ttl=data.vault_secret_id_ttl, cluster_pki_mount=data.vault_cluster_pki_mount,
                      cluster_cert_ttl=data.vault_cluster_cert_ttl)


def vault_json(data, settings) -> str:
    return json.dumps({"addr": data.vault_addr or settings.addr, "ca_file": HOST_VAULT_CA if settings.ca_file else None,
                       "transit_mount": data.vault_transit_mount, "approle_mount": data.vault_approle_mount},
                      indent=2, sort_keys=True) + "\n"


def apply_changes(settings, access) -> None:
    from toskit.vault import apply
    apply(settings, settings.client(), access)


@deploy("TOS vault", data_defaults=ALL_DEFAULTS)
def vault():
    from toskit.vault import VaultError, VaultSettings, drift
    Data.check(host.name, host.data)
    data = host.data
    settings = VaultSettings.from_data(host.name, data)
    access = node_access(data)
    certificates = {"cluster": Certificate.signed_by(access.cluster, CLUSTER_CERTIFICATE, "nginx")}
    check_renewal(host.name, "vault_cert_renew_interval", data.vault_cert_renew_interval, certificates)
    try:
        changes = drift(settings, settings.client(), access)
    except VaultError as e:
        key, value = blamed_key(e, ("vault_token_file", settings.token_source),
                                ("vault_cluster_pki_mount", data.vault_cluster_pki_mount))
        raise DataError(host.name, key, value, str(e),
                        "fix the Vault address, CA, token or mount (see roles/vault.py); nothing was changed") from None
    if changes:
        python.call(name=f"Vault: {'; '.join(changes)}", function=apply_changes, settings=settings, access=access)

    files.directory(name="/etc/tos", path="/etc/tos", user="root", group="root", mode="755")
    if settings.ca_file:
        operations.put(name="Vault's CA", src=settings.ca_file, dest=HOST_VAULT_CA, mode="644")
    operations.put(name="Vault settings of tos-session", src=StringIO(vault_json(data, settings)),
                   dest="/etc/tos/vault.json", mode="644")
    # Recreated at every boot (RAM only); the credential in it is not: a rebooted node is enrolled again.
    operations.put(name="Node credential folder at boot", src=StringIO(f"d {CREDENTIALS} 0700 root root -\n"),
                   dest="/etc/tmpfiles.d/tos-vault.conf", mode="644")
    files.directory(name="Node credential folder (tmpfs, root only)", path=CREDENTIALS,
                    user="root", group="root", mode="700")
    from toskit.vault import ROLE_PREFIX, enrol, secret_id_fresh
    # Enrolled again when its login fails, its role changed, or its secret_id is past half its life.
    if host.get_fact(VaultLogin) != "ok" or any("approle" in c for c in changes) or \
            not secret_id_fresh(settings, settings.client(), ROLE_PREFIX + host.name, data.vault_secret_id_ttl):
        python.call(name=f"Enrol {host.name} with Vault (AppRole secret_id by response wrapping)",
                    function=enrol, settings=settings, role=ROLE_PREFIX + host.name, tool="tos-session vault-enrol")
    install(data.vault_addr or settings.addr, settings, certificates, data.vault_cert_renew_interval)
    renew_due(certificates)
