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
        if not role_id or not secret_id:  # systemd's empty stand-ins: not enrolled since a reboot
            raise SecretUnavailable("the portal holds no Vault credential (none since the gateway started); "
                                    "run the deploy, which enrols it")
        client = hvac.Client(url=self.access.addr, verify=self.access.ca_file or True, timeout=10)
        client.auth.approle.login(role_id, secret_id, mount_point=self.access.approle_mount)
        return client

    def _with_login(self, call):
        """call(client) with a logged-in client; once more after a new login if the token expired."""
        with self._lock:
            for attempt in (1, 2):
                if self._client is None or attempt == 2:
                    self._client = self._login()
                try:
                    return call(self._client)
                except hvac.exceptions.Forbidden:
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")

    def _guarded(self, what: str, call):
        try:
            return call()
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as e:
            raise SecretUnavailable(f"Vault does not answer ({type(e).__name__})") from None
        except hvac.exceptions.VaultError as e:
            raise SecretUnavailable(f"Vault refused {what}: {str(e).splitlines()[0]}") from None

    def record(self, name: str) -> tuple:
        """(data, version) of <kv_prefix>/<name>, or (None, 0) if there is none."""
        path = f"{self.access.kv_prefix}/{name}"

        def read(client):
            try:
                found = client.secrets.kv.v2.read_secret_version(path, mount_point=self.access.kv_mount,
                                                                 raise_on_deleted_version=True)["data"]
            except hvac.exceptions.InvalidPath:
                return None, 0
            return found["data"], found["metadata"]["version"]
        return self._guarded(f"reading {path}", lambda: self._with_login(read))

    def save_record(self, name: str, data: dict, version: int) -> None:
        """Writes <kv_prefix>/<name> only if it is still at `version` (0: absent): two gateways
        changing a person's passkeys at once cannot undo each other's change."""
        path = f"{self.access.kv_prefix}/{name}"
        self._guarded(f"writing {path}", lambda: self._with_login(
            lambda c: c.secrets.kv.v2.create_or_update_secret(path, data, cas=version,
                                                              mount_point=self.access.kv_mount)))

    def client_secret(self, provider: str) -> str:
        data, _ = self.record(f"oidc/{provider}")
        if not data or not data.get("client_secret"):
            raise SecretUnavailable(f"no client_secret in Vault at {self.access.kv_mount}/"
                                    f"{self.access.kv_prefix}/oidc/{provider}")
        return data["client_secret"]
