"""A node's Vault client: AppRole login, then transit calls for its tenants' volume keys.

The node's only credential is its AppRole secret_id, kept in RAM (/run, tmpfs), delivered at
deploy time by response wrapping. Every operation logs in, does its calls, and revokes its token.
Secrets travel only in request bodies and headers over TLS 1.3: never argv, env, logs or disk.
Any failure to reach Vault fails closed: nothing is opened or created.
"""

import base64
import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .errors import NodeError, VaultDenied, VaultUnreachable
from .files import replace_file

CREDENTIALS = Path("/run/tos/vault")  # tmpfs: gone at reboot; the next deploy re-enrols the node
KEY_PREFIX = "tos-tenant-"


@dataclass(frozen=True)
class VaultConfig:
    addr: str
    ca_file: str
    transit_mount: str = "transit"
    approle_mount: str = "approle"
    credentials: Path = CREDENTIALS

    @classmethod
    def from_dict(cls, raw: dict) -> "VaultConfig":
        return cls(raw["addr"], raw["ca_file"], raw.get("transit_mount", "transit"),
                   raw.get("approle_mount", "approle"))


class NodeVault:
    def __init__(self, config: VaultConfig):
        self.config = config
        self.context = ssl.create_default_context(cafile=config.ca_file)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_3
        self.token = None

    def _request(self, path: str, body: dict | None, token: str | None, what: str) -> dict:
        request = urllib.request.Request(f"{self.config.addr}/v1/{path}", method="POST" if body is not None else "GET",
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Content-Type": "application/json"})
        if token:
            request.add_header("X-Vault-Token", token)
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=10) as response:
                raw = response.read()
        except urllib.error.HTTPError as e:
            detail = "; ".join(json.loads(e.read() or b"{}").get("errors", [])) or e.reason
            if e.code in (400, 403):
                raise VaultDenied(f"Vault denied {what} ({detail})") from None
            raise NodeError(f"Vault failed {what}: HTTP {e.code} ({detail})") from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            if isinstance(reason, ssl.SSLCertVerificationError):
                raise NodeError(f"Vault at {self.config.addr} failed TLS verification ({reason.verify_message}) "
                                f"while {what}; check vault_ca_file; failing closed: nothing was changed") from None
            raise VaultUnreachable(f"Vault at {self.config.addr} is unreachable ({reason}) while {what}; "
                                   f"failing closed: nothing was opened or changed") from None
        return json.loads(raw) if raw else {}

    # ---- the node's credential
    def enrol(self) -> None:
        """Unwraps the secret_id the deploy left in a single-use wrapping token, keeps it in RAM."""
        creds = self.config.credentials
        wrapping = (creds / "wrapping-token").read_text().strip()
        try:
            reply = self._request("sys/wrapping/unwrap", {}, wrapping, "unwrapping this node's secret_id")
        except VaultDenied as e:
            raise NodeError(f"{e}: the wrapping token was already used or expired. If this deploy did "
                            f"not use it, someone else may have: revoke the node's secret_ids and deploy again") from None
        finally:
            (creds / "wrapping-token").unlink(missing_ok=True)
        replace_file(creds / "secret-id", reply["data"]["secret_id"].encode(), mode=0o600)

    def login(self) -> None:
        creds = self.config.credentials
        try:
            role_id = (creds / "role-id").read_text().strip()
            secret_id = (creds / "secret-id").read_text().strip()
        except FileNotFoundError:
            raise NodeError("this node holds no Vault credential (it was rebooted or never enrolled); "
                            "run the deploy, which enrols it") from None
        reply = self._request(f"auth/{self.config.approle_mount}/login", {"role_id": role_id, "secret_id": secret_id},
                              None, "this node's AppRole login")
        self.token = reply["auth"]["client_token"]

    def logout(self) -> None:
        if self.token:
            try:
                self._request("auth/token/revoke-self", {}, self.token, "revoking this node's token")
            except NodeError:
                pass  # it expires within minutes anyway
            self.token = None

    def __enter__(self) -> "NodeVault":
        self.login()
        return self

    def __exit__(self, *exc) -> None:
        self.logout()

    # ---- transit, one tenant at a time
    def _transit(self, tenant_id: str, action: str, body: dict | None, what: str) -> dict:
        path = f"{self.config.transit_mount}/{action}/{KEY_PREFIX}{tenant_id}"
        try:
            return self._request(path, body, self.token, f"{what} of tenant {tenant_id}")["data"]
        except VaultDenied as e:
            raise VaultDenied(f"{e}: tenant {tenant_id} is disabled in Vault or not served by this node "
                              f"(the vault role's policy for this node); nothing was changed") from None

    def new_volume_key(self, tenant_id: str) -> tuple:
        """(key, wrapped): 64 random bytes from Vault's CSPRNG, and the same key wrapped by the
        tenant's transit key. Only the wrapped form is ever stored."""
        data = self._transit(tenant_id, "datakey/plaintext", {"bits": 512}, "a new volume key")
        return base64.b64decode(data["plaintext"]), data["ciphertext"]

    def unwrap_volume_key(self, tenant_id: str, wrapped: str) -> bytes:
        data = self._transit(tenant_id, "decrypt", {"ciphertext": wrapped}, "unwrapping the volume key")
        return base64.b64decode(data["plaintext"])

    def rewrap_volume_key(self, tenant_id: str, wrapped: str) -> str:
        """The same key, wrapped with the latest version of the tenant's transit key."""
        return self._transit(tenant_id, "rewrap", {"ciphertext": wrapped}, "rewrapping the volume key")["ciphertext"]

    def rotate_tenant_key(self, tenant_id: str) -> int:
        self._transit(tenant_id, "keys", None, "reading the transit key")  # denied early if disabled
        path = f"{self.config.transit_mount}/keys/{KEY_PREFIX}{tenant_id}/rotate"
        self._request(path, {}, self.token, f"rotating the transit key of tenant {tenant_id}")
        return self.key_version(tenant_id)

    def key_version(self, tenant_id: str) -> int:
        return self._transit(tenant_id, "keys", None, "reading the transit key")["latest_version"]


def wrapped_version(wrapped: str) -> int:
    """vault:v3:... -> 3"""
    return int(wrapped.split(":")[1][1:])
