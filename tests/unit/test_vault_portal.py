"""The portal's part of Vault in a real OpenBao (toskit/vault_portal.py): the KV v2 engine the
client secrets live in, the portal's read-only policy and its AppRole, made by an operator."""

import pytest
from conftest import as_operator

from toskit.vault import VaultError
from toskit.vault_portal import PortalAccess, apply, drift, missing_secrets


def access(gateway: str, kv_mount: str = "tos-kv") -> PortalAccess:
    return PortalAccess(gateway, "127.0.0.1/32", kv_mount, "tos/portal", "1h")


def test_apply_makes_what_a_portal_needs_and_then_nothing_is_left_to_do(settings):
    root = settings.client()
    assert "enable kv v2 at tos-kv/" in drift(settings, root, access("gw1"))
    assert apply(settings, root, access("gw1"))
    assert drift(settings, root, access("gw1")) == [] and apply(settings, root, access("gw1")) == []
    assert missing_secrets(settings, root, access("gw1"), ["lab"]) == ["lab"]  # read at once: the mount serves
    root.secrets.kv.v2.create_or_update_secret("tos/portal/oidc/lab", {"client_secret": "s"}, mount_point="tos-kv")
    assert missing_secrets(settings, root, access("gw1"), ["lab"]) == []


def test_the_operator_policy_is_enough_for_a_portal(settings, tmp_path):
    root, operator = settings.client(), as_operator(settings, tmp_path)
    if "tos-kv/" in root.sys.list_mounted_secrets_engines()["data"]:  # the operator mounts it, as on a new site
        root.sys.disable_secrets_engine("tos-kv")
    apply(operator, operator.client(), access("gw2"))
    assert drift(settings, root, access("gw2")) == []
    assert missing_secrets(operator, operator.client(), access("gw2"), ["corp"]) == ["corp"]  # metadata, not the secret
    root.secrets.kv.v2.create_or_update_secret("tos/portal/oidc/corp", {"client_secret": "s"}, mount_point="tos-kv")
    with pytest.raises(Exception, match="permission denied"):  # the operator never reads a client secret
        operator.client().secrets.kv.v2.read_secret_version("tos/portal/oidc/corp", mount_point="tos-kv",
                                                             raise_on_deleted_version=True)


def test_another_engine_at_the_kv_path_names_the_key_to_change(settings):
    root = settings.client()
    root.sys.enable_secrets_engine("transit", path="not-kv")
    with pytest.raises(VaultError, match="holds a transit engine, not kv; set portal_kv_mount"):
        drift(settings, root, access("gw3", kv_mount="not-kv"))
