"""Vault's PKI engine as the roles use it: a CA generated inside Vault (its key never leaves it)
and one PKI role per host that signs that host's CSRs for its own name only. Two CAs use this:
the gateways' browser-facing one (vault_gateway.py) and the cluster's (below), which signs only
the certificates of the hop gateway -> node (mutual TLS). They are apart on purpose: a certificate
browsers trust is never a client a node accepts, and a node's certificate means nothing to a browser.

Reads never change anything (pki_drift); pki_apply makes Vault match (callers hold vault._APPLYING).
"""

from dataclasses import dataclass

import hvac

from .vault import VaultSettings, _call, _mounted, _role_matches

CA_TTL = "87600h"  # ten years: a root that signs only short-lived host certificates
CLUSTER_CA_NAME = "TOS cluster CA"
CLUSTER_NODE_PREFIX = "tos-cluster-node-"
CLUSTER_GATEWAY_PREFIX = "tos-cluster-gateway-"


@dataclass(frozen=True)
class PkiRole:
    """One host's signing role in a PKI mount."""
    mount: str
    mount_key: str   # the data key that chose the mount (named in errors)
    ca_name: str
    role: str
    common_name: str
    server: bool     # a server certificate (node, gateway) or a client one (the gateway to nodes)
    cert_ttl: str

    def role_settings(self) -> dict:
        return {"allowed_domains": [self.common_name], "allow_bare_domains": True, "allow_subdomains": False,
                "allow_glob_domains": False, "allow_ip_sans": False, "allow_localhost": False,
                "server_flag": self.server, "client_flag": not self.server, "key_type": "ec", "key_bits": 256,
                "max_ttl": self.cert_ttl, "ttl": self.cert_ttl, "no_store": True}

    def sign_policy(self) -> str:
        # not_after/not_before would bypass the role's max_ttl (sign honours them as given).
        return (f'path "{self.mount}/sign/{self.role}" {{\n'
                f'  capabilities = ["update"]\n'
                f'  denied_parameters = {{ "not_after" = [], "not_before" = [] }}\n'
                f'}}\n')


def cluster_node_role(node: str, mount: str, cert_ttl: str) -> PkiRole:
    """A node's server certificate for the gateways' mutual TLS: its host name only."""
    return PkiRole(mount, "vault_cluster_pki_mount", CLUSTER_CA_NAME, CLUSTER_NODE_PREFIX + node, node, True, cert_ttl)


def cluster_gateway_role(gateway: str, mount: str, cert_ttl: str) -> PkiRole:
    """A gateway's client certificate towards the nodes: CN tos-gateway-<host>, which nodes require."""
    return PkiRole(mount, "vault_cluster_pki_mount", CLUSTER_CA_NAME, CLUSTER_GATEWAY_PREFIX + gateway,
                   f"tos-gateway-{gateway}", False, cert_ttl)


def ca_pem(settings: VaultSettings, client: hvac.Client, mount: str) -> str:
    """The CA's certificate (public), '' while there is none (nor, before a first deploy, its mount)."""
    return _call(f"reading the CA of {mount}/", settings, client.secrets.pki.read_ca_certificate,
                 mount_point=mount, missing_ok=True) or ""


def pki_drift(settings: VaultSettings, client: hvac.Client, pki: PkiRole) -> list:
    changes = []
    mounted = _mounted(settings, client, pki.mount, "pki", auth=False, key=pki.mount_key)
    if not mounted:
        changes.append(f"enable pki at {pki.mount}/")
    if not mounted or not ca_pem(settings, client, pki.mount):
        changes.append(f"generate the {pki.ca_name} in {pki.mount}/")
    current = mounted and _call(f"reading pki role {pki.role}", settings, client.secrets.pki.read_role, pki.role,
                                mount_point=pki.mount, missing_ok=True)
    if not current or not _role_matches(current["data"], pki.role_settings()):
        changes.append(f"write pki role {pki.role}")
    return changes


def pki_apply(settings: VaultSettings, client: hvac.Client, pki: PkiRole) -> None:
    if not pki_drift(settings, client, pki):
        return
    if not _mounted(settings, client, pki.mount, "pki", auth=False, key=pki.mount_key):
        _call(f"enabling pki at {pki.mount}/", settings, client.sys.enable_secrets_engine, "pki", path=pki.mount,
              config={"max_lease_ttl": CA_TTL})
    if not ca_pem(settings, client, pki.mount):
        _call(f"generating the {pki.ca_name}", settings, client.secrets.pki.generate_root, "internal", pki.ca_name,
              extra_params={"ttl": CA_TTL, "key_type": "ec", "key_bits": 384}, mount_point=pki.mount)
    _call(f"writing pki role {pki.role}", settings, client.secrets.pki.create_or_update_role, pki.role,
          extra_params=pki.role_settings(), mount_point=pki.mount)
