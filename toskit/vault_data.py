"""How a host and the operator's machine reach Vault: data every role that talks to Vault reads
(the vault role on nodes, the gateway role). The roles' schemas include these keys, so
`toskit.check` validates them with their other keys. No hvac here: the roles import this early."""

from .schema import RoleData
from .schema.net import HttpsUrl
from .schema.types import DurationText, LocalPath, MountName, Optional

# Where a host keeps its AppRole credential: tmpfs, root only; gone at reboot (the deploy enrols it again).
CREDENTIALS = "/run/tos/vault"
HOST_VAULT_CA = "/etc/tos/vault-ca.pem"  # Vault's CA on a host (copied from vault_ca_file)


class VaultAccessData(RoleData):
    # Vault (or OpenBao) as the hosts reach it, https only; None: VAULT_ADDR on the operator's machine.
    vault_addr: Optional[HttpsUrl] = None
    # ...and as the operator's machine reaches it, if that differs; None: VAULT_ADDR, else vault_addr.
    vault_operator_addr: Optional[HttpsUrl] = None
    # CA of Vault's certificate (a PEM on the operator's machine, copied to the hosts);
    # None: VAULT_CACERT, else the system's CAs.
    vault_ca_file: Optional[LocalPath] = None
    # File holding the operator's token; None: VAULT_TOKEN, else ~/.vault-token. The token needs
    # templates/vault/tos-operator.hcl, not root.
    vault_token_file: Optional[LocalPath] = None
    # Where the AppRole auth method is mounted (each node and gateway has its AppRole there).
    vault_approle_mount: MountName = "approle"
    # How long a host's secret_id stays valid; the deploy enrols the host again after that
    # (and after every reboot: the secret_id lives in RAM).
    vault_secret_id_ttl: DurationText(minimum=600) = "720h"
    # Where the cluster CA is mounted: it signs the certificates of the hop gateway -> node (mutual
    # TLS), each host its own name only. Not the gateways' browser-facing CA (gateway_pki_mount).
    vault_cluster_pki_mount: MountName = "tos-cluster-pki"
    # Lifetime of a certificate the cluster CA signs. Units: s, m, h.
    vault_cluster_cert_ttl: DurationText(maximum=90 * 86400, minimum=3600) = "72h"


def blamed_key(error: Exception, default: tuple, *candidates: tuple) -> tuple:
    """(data key, value) a Vault error is about: the first candidate whose key the message names
    (a mount's check names its key), else `default` (the token, usually)."""
    return next(((key, value) for key, value in candidates if key in str(error)), default)
