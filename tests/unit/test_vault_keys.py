"""Tenants' keys in a real OpenBao: the operator side (toskit/vault.py, hvac) and the node side
(tosnode/vaultclient.py, standard library), talking to each other the way a deploy makes them."""

import dataclasses

import pytest
from conftest import as_operator

from toskit.node.tosnode.errors import NodeError, VaultDenied, VaultUnreachable
from toskit.node.tosnode.vaultclient import NodeVault, VaultConfig, wrapped_version
from toskit.vault import NodeAccess, VaultError, VaultSettings, apply, drift, role_id, \
    wrapped_secret_id


def access(node="node1", cidr="127.0.0.1/32", tenants=("acme",), enabled=None) -> NodeAccess:
    return NodeAccess(node, cidr, tuple(tenants), tuple(tenants if enabled is None else enabled), "1h")


def enrolled_node(settings, tmp_path, node="node1") -> NodeVault:
    """A node whose credential came the deploy's way: role_id, then a wrapped secret_id it unwraps."""
    client = settings.client()
    (tmp_path / "role-id").write_text(role_id(settings, client, f"tos-node-{node}"))
    (tmp_path / "wrapping-token").write_text(wrapped_secret_id(settings, client, f"tos-node-{node}"))
    vault = NodeVault(VaultConfig(settings.addr, settings.ca_file, credentials=tmp_path))
    vault.enrol()
    return vault


def test_apply_makes_what_a_node_needs_and_then_nothing_is_left_to_do(settings):
    wanted = access(tenants=("acme", "beta"))
    assert "create transit key tos-tenant-acme" in drift(settings, settings.client(), wanted)
    apply(settings, settings.client(), wanted)
    assert drift(settings, settings.client(), wanted) == []
    assert apply(settings, settings.client(), wanted) == []
    key = settings.client().secrets.transit.read_key("tos-tenant-acme")["data"]
    assert key["exportable"] is False and key["deletion_allowed"] is False


def test_node_makes_unwraps_and_rewraps_a_volume_key_and_keeps_its_secret_private(settings, tmp_path):
    apply(settings, settings.client(), access())
    node = enrolled_node(settings, tmp_path)
    assert not (tmp_path / "wrapping-token").exists()
    assert oct((tmp_path / "secret-id").stat().st_mode & 0o777) == "0o600"
    with node:
        key, wrapped = node.new_volume_key("acme")
        assert len(key) == 64 and wrapped.startswith("vault:v")
        assert node.unwrap_volume_key("acme", wrapped) == key
        version = node.rotate_tenant_key("acme")
        rewrapped = node.rewrap_volume_key("acme", wrapped)
        assert wrapped_version(rewrapped) == version > wrapped_version(wrapped)
        assert node.unwrap_volume_key("acme", rewrapped) == key


def test_node_is_refused_tenants_it_does_not_serve_and_disabled_ones(settings, tmp_path):
    apply(settings, settings.client(), access(tenants=("acme", "beta")))
    apply(settings, settings.client(), access(node="node9", tenants=("beta",)))
    with enrolled_node(settings, tmp_path, "node9") as node:
        with pytest.raises(VaultDenied, match="tenant acme is disabled in Vault or not served by this node"):
            node.new_volume_key("acme")
        _, wrapped = node.new_volume_key("beta")
        apply(settings, settings.client(), access(node="node9", tenants=("beta",), enabled=()))
        with pytest.raises(VaultDenied, match="tenant beta"):
            node.unwrap_volume_key("beta", wrapped)


def test_secret_id_works_only_from_the_nodes_address(settings, tmp_path):
    apply(settings, settings.client(), access(node="node7", cidr="127.0.0.2/32"))
    node = enrolled_node(settings, tmp_path, "node7")  # unwrapping works from anywhere...
    with pytest.raises(VaultDenied, match="denied this node's AppRole login"):
        node.login()  # ...logging in only from the bound address


def test_a_wrapping_token_works_once(settings, tmp_path):
    apply(settings, settings.client(), access(node="node5"))
    client = settings.client()
    token = wrapped_secret_id(settings, client, "tos-node-node5")
    client.sys.unwrap(token)  # someone else got there first
    (tmp_path / "wrapping-token").write_text(token)
    with pytest.raises(NodeError, match="already used or expired.*someone else may have"):
        NodeVault(VaultConfig(settings.addr, settings.ca_file, credentials=tmp_path)).enrol()
    assert not (tmp_path / "secret-id").exists()


def test_enrolling_again_revokes_the_old_secret_id(settings, tmp_path):
    apply(settings, settings.client(), access(node="node4"))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    old = enrolled_node(settings, tmp_path / "a", "node4")
    enrolled_node(settings, tmp_path / "b", "node4").login()
    with pytest.raises(VaultDenied):
        old.login()


def test_operator_policy_is_enough_and_a_weaker_token_changes_nothing(settings, running_vault, tmp_path):
    root, operator = settings.client(), as_operator(settings, tmp_path)
    apply(operator, operator.client(), access(node="node3", tenants=("gamma",)))
    assert drift(settings, root, access(node="node3", tenants=("gamma",))) == []
    from toskit.vault import secret_id_fresh
    wrapped_secret_id(operator, operator.client(), "tos-node-node3")  # what a deploy's enrolment does
    assert secret_id_fresh(operator, operator.client(), "tos-node-node3", "1h")  # what every deploy asks
    operator.client().secrets.transit.rotate_key("tos-tenant-gamma", mount_point=operator.transit_mount)

    weak_token = tmp_path / "weak"
    weak_token.write_text(root.auth.token.create(policies=["default"], ttl="10m")["auth"]["client_token"])
    weak = dataclasses.replace(settings, token_source=str(weak_token))
    with pytest.raises(VaultError, match=f"denied .* to the token from {weak_token}.*tos-operator.hcl"):
        apply(weak, weak.client(), access(node="node8", tenants=("delta",)))
    assert "tos-node-node8" not in root.sys.list_acl_policies()["data"]["keys"]


def test_unreachable_vault_fails_closed_with_a_clear_error(settings, tmp_path):
    gone = dataclasses.replace(settings, addr="https://127.0.0.1:9")
    with pytest.raises(VaultError, match="unreachable.*nothing was changed"):
        drift(gone, gone.client(), access())
    (tmp_path / "role-id").write_text("r")
    (tmp_path / "secret-id").write_text("s")
    with pytest.raises(VaultUnreachable, match="unreachable.*failing closed"):
        NodeVault(VaultConfig(gone.addr, settings.ca_file, credentials=tmp_path)).login()


def test_nodes_applied_at_the_same_time_share_the_transit_mount(tmp_path_factory):
    """pyinfra runs every node's apply at once; the first run makes the shared parts exactly once."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from conftest import _lab_vault
    vault = _lab_vault(tmp_path_factory.mktemp("fresh"))
    try:
        vault.start()
        fresh = VaultSettings(vault.url, str(vault.ca_file), str(vault.root_token_file), "transit", "approle")
        start = threading.Barrier(8)

        def apply_node(n):
            client = fresh.client()
            start.wait()
            return apply(fresh, client, access(node=f"node{n}"))
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(apply_node, range(8)))
        assert all(drift(fresh, fresh.client(), access(node=f"node{n}")) == [] for n in range(8))
    finally:
        vault.stop()


def test_the_node_names_a_tenants_transit_key_as_the_operator_does():
    # The node tool is standard library only and keeps its own copy of the prefix.
    from toskit.node.tosnode import vaultclient
    from toskit.vault import KEY_PREFIX
    assert vaultclient.KEY_PREFIX == KEY_PREFIX == "tos-tenant-"
