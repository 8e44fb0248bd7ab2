"""Tenant storage on the lab, proved from outside the guests: what the disks and the wire hold,
where key material can be found, Vault outages, bad input, rotation, disabled tenants, and a
node destroyed and rebuilt. Runs after test_1 deployed the lab, on node1 (tenant acme), beside
node2's rebuild in test_5 (the second stage: conftest.py).
"""

import base64
import json
import re
import secrets
from pathlib import Path

import pytest
from labtools import CONFIG, ON_NODE1, PYINFRA, ROOT, found_on_disk, on, run, session_read, session_write

from toskit.lab.capture import Capture
from toskit.lab.vault import LabVault

pytestmark = ON_NODE1
SHARE = "/var/lib/tos/share"
NODE_SCAN = Path(__file__).with_name("node_scan.py")


def node_leaks(host: str, needles: list) -> list:
    """Where in the guest's processes (argv, environment) and journal the needles appear. The
    needles travel on stdin, so this check itself never puts them in an argv."""
    on(host, "cat > /run/tos-node-scan.py", stdin=NODE_SCAN.read_text())
    lines = "\n".join(n.hex() for n in needles) + "\n"
    return on(host, "python3 /run/tos-node-scan.py", stdin=lines).stdout.split()


def wrapped_key(host: str, tenant: str) -> str:
    return json.loads(on(host, f"cat {SHARE}/{tenant}.key.json").stdout)["wrapped_key"]


def luks_uuid(host: str, tenant: str) -> str:
    return on(host, f"cryptsetup luksUUID {SHARE}/{tenant}.luks").stdout.strip()




@pytest.fixture(scope="module")
def acme_on_node1():
    on("node1", "tos-session start acme")
    yield
    on("node1", "tos-session stop acme", check=False)


def test_data_and_keys_are_nowhere_in_plain_on_disks_wire_or_processes(acme_on_node1):
    marker = f"TOSMARK{secrets.token_hex(16)}"
    control = f"TOSCTRL{secrets.token_hex(16)}"
    node1 = next(h for h in CONFIG.hosts if h.name == "node1")
    with Capture(CONFIG, node1) as wire:
        session_write("node1", "acme", "/home/session/marker", marker)
        # Read it back through the wire: drop the node's caches first.
        on("node1", "echo 3 > /proc/sys/vm/drop_caches")
        assert session_read("node1", "acme", "/home/session/marker") == marker
        # Control: the same kind of bytes, written in plain to the share, must show up everywhere
        # a plain marker would (else the checks below could not fail).
        on("node1", f"cat > {SHARE}/.plain-control && sync", stdin=control)
    on("node1", f"rm -f {SHARE}/.plain-control")
    assert control.encode() in wire.data and wire.tcp_payload_bytes(2049) > 16 * 1024
    assert marker.encode() not in wire.data
    assert found_on_disk("storage", [marker.encode(), control.encode()]) == {control.encode()}
    assert found_on_disk("node1", [marker.encode()]) == set()

    # The volume key, its encodings, and the node's secret_id: in no file, argv, environment or journal.
    key = base64.b64decode(LabVault(CONFIG).root_client().secrets.transit.decrypt_data(
        "tos-tenant-acme", wrapped_key("node1", "acme"))["data"]["plaintext"])
    secret_id = on("node1", "cat /run/tos/vault/secret-id").stdout.strip().encode()
    needles = [key, key.hex().encode(), base64.b64encode(key), secret_id]
    assert len(key) == 64
    assert found_on_disk("node1", needles) == set()
    assert node_leaks("node1", needles) == []
    # ...while the check does find what it looks for: the secret_id is in the node's RAM (tmpfs).
    assert node_leaks("node1", [b"tos-session"]) != []


def test_vault_unreachable_fails_closed_and_running_sessions_keep_running(acme_on_node1):
    before = on("node1", "docker exec tos-session-acme tos-session-ctl show").stdout
    on("node1", "ip route add blackhole 10.0.2.101/32")
    try:
        refused = on("node1", "tos-session start beta", check=False)
        assert refused.returncode == 1
        assert "unreachable" in refused.stderr and "failing closed" in refused.stderr, refused.stderr
        assert on("node1", "ls /dev/mapper").stdout.split() == ["control", "tos-vol-acme"]
        assert on("node1", "docker ps -a --format '{{.Names}}'").stdout.split() == ["tos-session-acme"]
        assert on("node1", f"test -e {SHARE}/beta.lease", check=False).returncode == 1
        # The running session is untouched: its agent keeps ticking and its home keeps working.
        session_write("node1", "acme", "/home/session/during-outage", "still here")
        assert session_read("node1", "acme", "/home/session/during-outage") == "still here"
        assert on("node1", "docker exec tos-session-acme tos-session-ctl show").stdout != before
    finally:
        on("node1", "ip route del blackhole 10.0.2.101/32")
    assert on("node1", "tos-session vault-check").stdout.strip() == "ok"


def test_bad_input_gets_a_clear_error_and_changes_nothing(acme_on_node1, tmp_path):
    uuid = luks_uuid("node1", "acme")
    unknown = on("node1", "tos-session volume open zeta", check=False)
    assert unknown.returncode == 1 and "unknown tenant 'zeta'" in unknown.stderr

    # Deploy-time data: a volume smaller than the existing one, and an operator token without rights.
    weak = LabVault(CONFIG).root_client().auth.token.create(policies=["default"], ttl="10m")["auth"]["client_token"]
    (tmp_path / "weak-token").write_text(weak)
    inventory = tmp_path / "lab.py"  # named like the lab's, so group_data/lab.py applies too
    for override, expected in (
            ({"tenants": [{"id": "acme", "quotas": {"memory": "128M", "volume_size": "128M"}}, {"id": "beta"}]},
             r"host node1: tenants\[0\]\.quotas\.volume_size = 134217728 is smaller than tenant acme's existing volume"),
            ({"vault_token_file": str(tmp_path / "weak-token")},
             r"host node1: vault_token_file = .* denied .*tos-operator\.hcl")):
        inventory.write_text(f"exec(open({str(ROOT / 'inventories' / 'lab.py')!r}).read())\n"
                             f"nodes = [(name, {{**data, **{override!r}}}) for name, data in nodes]\n")
        deploy = run([PYINFRA, "-y", str(inventory), "deploy.py",
                      "--limit", "node1"], 600, check=False)
        out = deploy.stdout + deploy.stderr
        assert deploy.returncode != 0 and re.search(expected, out), out[-3000:]
        assert "Beginning operation run" not in out  # stopped while planning: no host was touched
    assert luks_uuid("node1", "acme") == uuid  # never formatted again


def test_rotation_rewraps_the_key_and_leaves_the_data_alone(acme_on_node1):
    uuid, before = luks_uuid("node1", "acme"), wrapped_key("node1", "acme")
    out = on("node1", "tos-session volume rotate acme").stdout
    after = wrapped_key("node1", "acme")
    assert "rewrapped with transit key version" in out and after != before
    assert int(after.split(":")[1][1:]) > int(before.split(":")[1][1:])
    assert luks_uuid("node1", "acme") == uuid
    on("node1", "tos-session stop acme")
    on("node1", "tos-session start acme")
    assert session_read("node1", "acme", "/home/session/during-outage") == "still here"
