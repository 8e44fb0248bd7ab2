"""The gateways' certificates in Vault's PKI engine, managed from the operator's machine with hvac.

What the gateway role makes, per gateway:
- the PKI engine (once), with a root CA generated inside Vault: its key never leaves Vault;
- a PKI role `tos-gateway-<host>` that signs, for its own server name only, server certificates
  no longer-lived than `gateway_cert_ttl`;
- in the cluster CA (vault_pki.py), a role `tos-cluster-gateway-<host>` that signs its client
  certificate towards the nodes (CN tos-gateway-<host>);
- a policy and an AppRole `tos-gateway-<host>` allowing exactly that signing (bound to the
  gateway's address). The gateway makes its key and a CSR itself and sends Vault only the CSR:
  its private key never leaves it (tos-cert, on the gateway).
Reads here never change anything (drift); apply() makes Vault match; both are idempotent.
"""

from dataclasses import dataclass

import hvac

from .vault import _APPLYING, VaultSettings, access_drift, apply_access, host_approle
from .vault_pki import PkiRole, ca_pem, cluster_gateway_role, pki_apply, pki_drift

ROLE_PREFIX = "tos-gateway-"
CA_COMMON_NAME = "TOS gateway CA"


@dataclass(frozen=True)
class GatewayAccess:
    """What Vault must hold for one gateway."""
    gateway: str
    cidr: str
    server_name: str
    cert_ttl: str
    secret_id_ttl: str
    pki_mount: str
    cluster_pki_mount: str = "tos-cluster-pki"
    cluster_cert_ttl: str = "72h"

    @property
    def role(self) -> str:
        return ROLE_PREFIX + self.gateway

    @property
    def pki(self) -> PkiRole:
        """Its browser-facing certificate: its server name only."""
        return PkiRole(self.pki_mount, "gateway_pki_mount", CA_COMMON_NAME, self.role, self.server_name, True,
                       self.cert_ttl)

    @property
    def cluster(self) -> PkiRole:
        """Its client certificate towards the nodes (mutual TLS), from the cluster CA."""
        return cluster_gateway_role(self.gateway, self.cluster_pki_mount, self.cluster_cert_ttl)

    def approle_settings(self) -> dict:
        return host_approle(self.role, self.cidr, self.secret_id_ttl)

    def policy(self) -> str:
        return ("# Written by the TOS gateway role. A gateway may have Vault sign a CSR for its own\n"
                "# server name, and one for its client name towards the nodes, no longer-lived than\n"
                "# its roles allow, and nothing else.\n" + self.pki.sign_policy() + self.cluster.sign_policy())


def drift(settings: VaultSettings, client: hvac.Client, access: GatewayAccess) -> list:
    """What apply() would change for this gateway; [] when Vault already matches. Reads only."""
    return (pki_drift(settings, client, access.pki) + pki_drift(settings, client, access.cluster)
            + access_drift(settings, client, access.role, access.policy(), access.approle_settings()))


def apply(settings: VaultSettings, client: hvac.Client, access: GatewayAccess) -> list:
    """Makes Vault hold what the gateway needs; returns what it changed."""
    with _APPLYING:
        changes = drift(settings, client, access)
        if not changes:
            return []
        pki_apply(settings, client, access.pki)
        pki_apply(settings, client, access.cluster)
        apply_access(settings, client, access.role, access.policy(), access.approle_settings())
        return changes


__all__ = ["GatewayAccess", "apply", "ca_pem", "drift"]  # ca_pem: what browsers and audits trust the gateways by
