"""The portal's access to Vault, managed from the operator's machine with hvac.

Per gateway: a KV v2 engine (once) holding the sign-in providers' client secrets, written there by
an administrator (`bao kv put <mount>/<prefix>/oidc/<provider> client_secret=...`), never by the
deploy, which only checks that each is there (reading metadata, never the secret); a policy and an
AppRole `tos-portal-<host>` that may read those secrets and nothing else (bound to the gateway's
address). The portal's AppRole is not the gateway's: a compromised portal cannot have
certificates signed. Reads here never change anything (drift); apply() makes Vault match.
"""

from dataclasses import dataclass

import hvac

from .vault import (_APPLYING, VaultError, VaultSettings, _call, _mounted, access_drift, apply_access,
                    enable_kv_v2, host_approle)

ROLE_PREFIX = "tos-portal-"


@dataclass(frozen=True)
class PortalAccess:
    gateway: str
    cidr: str
    kv_mount: str
    kv_prefix: str
    secret_id_ttl: str

    @property
    def role(self) -> str:
        return ROLE_PREFIX + self.gateway

    def secret_path(self, provider: str) -> str:
        return f"{self.kv_prefix}/oidc/{provider}"

    def policy(self) -> str:
        return (f"# Written by the TOS portal role: the portal reads the sign-in providers' client\n"
                f"# secrets, keeps people's passkeys (public keys, counters), and nothing else.\n"
                f'path "{self.kv_mount}/data/{self.kv_prefix}/oidc/*" {{\n'
                f'  capabilities = ["read"]\n'
                f'}}\n'
                f'path "{self.kv_mount}/data/{self.kv_prefix}/passkeys/*" {{\n'
                f'  capabilities = ["create", "read", "update"]\n'
                f'}}\n'
                f'path "{self.kv_mount}/data/{self.kv_prefix}/people/*" {{\n'
                f'  capabilities = ["create", "read", "update"]\n'
                f'}}\n')

    def approle_settings(self) -> dict:
        return host_approle(self.role, self.cidr, self.secret_id_ttl, token_ttl="15m", token_max_ttl="1h")


def _kv_mounted(settings: VaultSettings, client: hvac.Client, mount: str) -> bool:
    if not _mounted(settings, client, mount, "kv", auth=False, key="portal_kv_mount"):
        return False
    listing = _call("listing secrets engines", settings, client.sys.list_mounted_secrets_engines)
    version = ((listing.get("data", listing)[f"{mount}/"].get("options") or {}).get("version"))
    if version != "2":
        raise VaultError(f"Vault path {mount}/ holds a KV version {version or 1} engine, not version 2; "
                         f"set portal_kv_mount to a free path")
    return True


def missing_secrets(settings: VaultSettings, client: hvac.Client, access: PortalAccess, providers) -> list:
    """The providers whose client secret is not in Vault (their KV metadata, never the secret)."""
    if not _kv_mounted(settings, client, access.kv_mount):
        return list(providers)
    return [name for name in providers
            if _call(f"reading the metadata of {access.kv_mount}/{access.secret_path(name)}", settings,
                     client.secrets.kv.v2.read_secret_metadata, access.secret_path(name),
                     mount_point=access.kv_mount, missing_ok=True) is None]


def drift(settings: VaultSettings, client: hvac.Client, access: PortalAccess) -> list:
    """What apply() would change for this gateway's portal; [] when Vault already matches."""
    changes = [] if _kv_mounted(settings, client, access.kv_mount) else [f"enable kv v2 at {access.kv_mount}/"]
    return changes + access_drift(settings, client, access.role, access.policy(), access.approle_settings())


def apply(settings: VaultSettings, client: hvac.Client, access: PortalAccess) -> list:
    with _APPLYING:
        changes = drift(settings, client, access)
        if not changes:
            return []
        if not _kv_mounted(settings, client, access.kv_mount):
            _call("enabling kv", settings, enable_kv_v2, client, access.kv_mount,
                  access.secret_path(".mount-probe"))  # a path the operator may read
        apply_access(settings, client, access.role, access.policy(), access.approle_settings())
        return changes
