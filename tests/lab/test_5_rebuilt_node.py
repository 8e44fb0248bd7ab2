"""node2, destroyed and rebuilt from nothing while test_3 and test_4 ran (conftest.node2_rebuild),
takes over: a session hibernated on node1 comes back on it with its live state, and the data
written before the rebuild; Vault's per-node policies hold on both nodes."""

import re

from labtools import (APP_BLOB_MB, CONFIG, PYINFRA, app_state, assert_freed, launch_app, memory_held, on,
                      restore_live, run, session_read)

from toskit.lab.vault import LabVault


def test_a_session_hibernated_on_node1_comes_back_on_the_rebuilt_node(node2_rebuild):
    marker, wait_for_rebuild = node2_rebuild
    on("node1", "tos-session stop acme")
    _, shared_before = memory_held("node1", "acme")
    on("node1", "tos-session start acme")
    before = launch_app("node1", "acme", "notes")
    assert memory_held("node1", "acme")[0] > APP_BLOB_MB * 2**20  # control: the probe sees the session's memory
    wait_for_rebuild()
    # While node1 has the volume open, node2 may not open it, and changes nothing trying.
    busy = on("node2", "tos-session restore acme", check=False)
    assert busy.returncode == 1 and "open on node1" in busy.stderr and "--take-over" in busy.stderr
    assert "tos-vol-acme" not in on("node2", "ls /dev/mapper").stdout

    hibernated = on("node1", "tos-session hibernate acme").stdout
    assert "hibernated to hib-" in hibernated, hibernated
    assert_freed("node1", "acme", shared_before)  # node1 is free again
    try:
        restore_live("node2", "acme")
        after = app_state("node2", "acme", "notes")
        assert (after["pid"], after["blob_sha256"]) == (before["pid"], before["blob_sha256"])
        assert after["counter"] >= before["counter"]
        # The session runs in acme's slice, with every isolation flag, on the new node.
        flags = on("node2", "docker inspect -f '{{.HostConfig.CgroupParent}} {{.HostConfig.ReadonlyRootfs}} "
                            "{{.HostConfig.CapDrop}} {{.HostConfig.SecurityOpt}}' tos-session-acme").stdout
        assert "tos-tenant-acme.slice true [ALL]" in flags and "no-new-privileges" in flags, flags
        assert session_read("node2", "acme", "/home/session/keep") == marker  # written before the rebuild
    finally:
        on("node2", "tos-session stop acme")


def test_a_tenant_disabled_in_vault_can_be_opened_nowhere():
    from toskit.vault import NodeAccess, VaultSettings, apply
    vault = LabVault(CONFIG)
    settings = VaultSettings(vault.url, str(vault.ca_file), str(vault.root_token_file), "transit", "approle")
    nodes = [h for h in CONFIG.hosts if h.group == "nodes"]
    try:
        for node in nodes:
            apply(settings, vault.root_client(), NodeAccess(node.name, f"{node.vault_source_ip}/32",
                                                            ("acme", "beta"), ("beta",), "720h"))
        for node in nodes:
            refused = on(node.name, "tos-session volume open acme", check=False)
            assert refused.returncode == 1 and "tenant acme is disabled in Vault" in refused.stderr
    finally:
        # The deploy puts back what the data says (acme enabled): changes on both nodes.
        deploy = run([PYINFRA, "-y", "inventories/lab.py", "deploy.py", "--limit", "nodes"], 900)
        summary = re.search(r"Vault: write policy tos-node-\w+ +(\d+) +(\d+)", deploy.stderr)
        assert summary and summary.groups() == ("2", "2"), deploy.stderr[-3000:]  # on both nodes
    assert "opened" in on("node2", "tos-session volume open acme").stdout
    on("node2", "tos-session volume close acme")
