"""The portal's secrets in Vault: its AppRole login and the providers' client secrets (KV v2).

The role_id and secret_id come from systemd's credentials folder ($CREDENTIALS_DIRECTORY: RAM,
readable by this service only); the deploy enrols the portal like the other hosts' tools. Nothing
read here is written to disk or logged. Vault unreachable: the sign-in is refused (fail closed).
"""

import os
import threading
from pathlib import Path

import hvac
import hvac.exceptions
import requests

from .settings import VaultAccess


class SecretUnavailable(Exception):
    """Vault could not give a secret: the message says why (never the secret)."""


class PortalVault:
    def __init__(self, access: VaultAccess):
        self.access = access
        self._client: hvac.Client | None = None
        self._lock = threading.Lock()

    def _login(self) -> hvac.Client:
        folder = Path(self.access.credentials or os.environ.get("CREDENTIALS_DIRECTORY", "/nonexistent"))
        try:
            role_id = (folder / "role-id").read_text().strip()
            secret_id = (folder / "secret-id").read_text().strip()
        except OSError as e:
            raise SecretUnavailable(f"the portal holds no Vault credential ({e.strerror}); run the deploy, "
                                    "which enrols it") from None
        client = hvac.Client(url=self.access.addr, verify=self.access.ca_file or True, timeout=10)
        client.auth.approle.login(role_id, secret_id, mount_point=self.access.approle_mount)
        return client

    def _read(self, path: str) -> dict:
        with self._lock:
            for attempt in (1, 2):  # a second time with a new login: the token may have expired
                if self._client is None or attempt == 2:
                    self._client = self._login()
                try:
                    return self._client.secrets.kv.v2.read_secret_version(
                        path, mount_point=self.access.kv_mount, raise_on_deleted_version=True)["data"]["data"]
                except hvac.exceptions.Forbidden:
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")

    def client_secret(self, provider: str) -> str:
        path = f"{self.access.kv_prefix}/oidc/{provider}"
        try:
            secret = self._read(path).get("client_secret")
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as e:
            raise SecretUnavailable(f"Vault does not answer ({type(e).__name__})") from None
        except hvac.exceptions.InvalidPath:
            raise SecretUnavailable(f"no client secret in Vault at {self.access.kv_mount}/{path}") from None
        except hvac.exceptions.VaultError as e:
            raise SecretUnavailable(f"Vault refused reading {self.access.kv_mount}/{path}: "
                                    f"{str(e).splitlines()[0]}") from None
        if not secret:
            raise SecretUnavailable(f"{self.access.kv_mount}/{path} holds no client_secret")
        return secret
