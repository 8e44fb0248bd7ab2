"""The gateways' certificates in Vault's PKI engine, managed from the operator's machine with hvac.

What the gateway role makes, per gateway:
- the PKI engine (once), with a root CA generated inside Vault: its key never leaves Vault;
- a PKI role `tos-gateway-<host>` that signs, for its own server name only, server certificates
  no longer-lived than `gateway_cert_ttl`;
- a policy and an AppRole `tos-gateway-<host>` allowing exactly that signing (bound to the
  gateway's address). The gateway makes its key and a CSR itself and sends Vault only the CSR:
  its private key never leaves it (tos-gateway, on the gateway).
Reads here never change anything (drift); apply() makes Vault match; both are idempotent.
"""

from dataclasses import dataclass

import hvac

from .vault import _APPLYING, VaultSettings, _call, _mounted, _role_matches, access_drift, apply_access, host_approle

ROLE_PREFIX = "tos-gateway-"
CA_COMMON_NAME = "TOS gateway CA"
CA_TTL = "87600h"  # ten years: the root signs only short-lived gateway certificates


def gateway_policy(pki_mount: str, role: str) -> str:
    # not_after/not_before would bypass the role's max_ttl (sign honours them as given).
    return (f"# Written by the TOS gateway role. A gateway may have Vault sign a CSR for its own\n"
            f"# server name, no longer-lived than its role allows, and nothing else.\n"
            f'path "{pki_mount}/sign/{role}" {{\n'
            f'  capabilities = ["update"]\n'
            f'  denied_parameters = {{ "not_after" = [], "not_before" = [] }}\n'
            f'}}\n')


@dataclass(frozen=True)
class GatewayAccess:
    """What Vault must hold for one gateway."""
    gateway: str
    cidr: str
    server_name: str
    cert_ttl: str
    secret_id_ttl: str
    pki_mount: str

    @property
    def role(self) -> str:
        return ROLE_PREFIX + self.gateway

    def pki_role_settings(self) -> dict:
        return {"allowed_domains": [self.server_name], "allow_bare_domains": True, "allow_subdomains": False,
                "allow_glob_domains": False, "allow_ip_sans": False, "allow_localhost": False,
                "server_flag": True, "client_flag": False, "key_type": "ec", "key_bits": 256,
                "max_ttl": self.cert_ttl, "ttl": self.cert_ttl, "no_store": True}

    def approle_settings(self) -> dict:
        return host_approle(self.role, self.cidr, self.secret_id_ttl)


def _ca_pem(settings: VaultSettings, client: hvac.Client, mount: str) -> str:
    return _call("reading the gateway CA", settings, client.secrets.pki.read_ca_certificate, mount_point=mount) or ""


def drift(settings: VaultSettings, client: hvac.Client, access: GatewayAccess) -> list:
    """What apply() would change for this gateway; [] when Vault already matches. Reads only."""
    changes = []
    pki = _mounted(settings, client, access.pki_mount, "pki", auth=False, key="gateway_pki_mount")
    if not pki:
        changes.append(f"enable pki at {access.pki_mount}/")
    if not pki or not _ca_pem(settings, client, access.pki_mount):
        changes.append(f"generate the gateway CA in {access.pki_mount}/")
    current = pki and _call(f"reading pki role {access.role}", settings, client.secrets.pki.read_role, access.role,
                            mount_point=access.pki_mount, missing_ok=True)
    if not current or not _role_matches(current["data"], access.pki_role_settings()):
        changes.append(f"write pki role {access.role}")
    return changes + access_drift(settings, client, access.role, gateway_policy(access.pki_mount, access.role),
                                  access.approle_settings())


def apply(settings: VaultSettings, client: hvac.Client, access: GatewayAccess) -> list:
    """Makes Vault hold what the gateway needs; returns what it changed."""
    with _APPLYING:
        changes = drift(settings, client, access)
        if not changes:
            return []
        mount = access.pki_mount
        if not _mounted(settings, client, mount, "pki", auth=False, key="gateway_pki_mount"):
            _call("enabling pki", settings, client.sys.enable_secrets_engine, "pki", path=mount,
                  config={"max_lease_ttl": CA_TTL})
        if not _ca_pem(settings, client, mount):
            _call("generating the gateway CA", settings, client.secrets.pki.generate_root, "internal",
                  CA_COMMON_NAME, extra_params={"ttl": CA_TTL, "key_type": "ec", "key_bits": 384}, mount_point=mount)
        _call(f"writing pki role {access.role}", settings, client.secrets.pki.create_or_update_role, access.role,
              extra_params=access.pki_role_settings(), mount_point=mount)
        apply_access(settings, client, access.role, gateway_policy(mount, access.role), access.approle_settings())
        return changes


def ca_pem(settings: VaultSettings, client: hvac.Client, mount: str) -> str:
    """The gateway CA's certificate (public): what browsers and audits trust the gateways by."""
    return _ca_pem(settings, client, mount)
