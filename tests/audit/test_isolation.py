"""Tenant isolation, proven by attack: from tenant A's live session, try to reach tenant B and the
host. Every attempt really runs (tos-probe performs the syscall or connection and reports what
stopped it), and each has a control attempt that shows the probe would have noticed success.

Needs two declared tenants; starts their sessions if they are not running and stops what it started.
"""

import json

import pytest

from roles.quotas import tenants_of
from toskit.check import DataView

pytestmark = pytest.mark.groups("nodes")
DENIED_BY_KERNEL = {"EPERM", "EACCES"}


@pytest.fixture
def pair(target, host):
    """(A, B): the first two tenants of this node, each with a running session."""
    declared = tenants_of(target.name, DataView(target.data))
    if len(declared) < 2:
        pytest.fail("isolation audits need two tenants declared for this node")
    a, b = declared[0].id, declared[1].id
    started = []
    for tenant in (a, b):
        out = host.check_output(f"tos-session start {tenant}")
        if out.endswith("started"):
            started.append(tenant)
    yield a, b
    for tenant in started:
        host.run(f"tos-session stop {tenant}")


def probe(host, tenant: str, *args: str) -> dict:
    return json.loads(host.check_output(f"tos-session exec {tenant} tos-probe {' '.join(args)}"))


def inspect(host, tenant: str) -> dict:
    return json.loads(host.check_output(f"docker inspect tos-session-{tenant}"))[0]


def session_ip(host, tenant: str) -> str:
    return next(iter(inspect(host, tenant)["NetworkSettings"]["Networks"].values()))["IPAddress"]


@pytest.mark.control("isolation-processes")
def test_a_cannot_see_b_or_host_processes(host, pair):
    a, b = pair
    visible = probe(host, a, "processes")["visible"]
    assert any(f"--tenant {a}" in cmd for cmd in visible), "control: A must see its own agent"
    assert not any(f"--tenant {b}" in cmd for cmd in visible)
    assert not any(word in cmd for cmd in visible for word in ("dockerd", "sshd", "systemd", "containerd"))


@pytest.mark.control("isolation-files")
def test_a_cannot_read_b_files(host, pair):
    a, b = pair
    assert probe(host, a, "read", "/home/session/.tos/path.json")["outcome"] == "allowed", "control"
    b_pid = inspect(host, b)["State"]["Pid"]
    for path in (f"/proc/{b_pid}/root/home/session/.tos/path.json", f"/proc/{b_pid}/environ"):
        assert probe(host, a, "read", path)["outcome"] != "allowed", path


@pytest.mark.control("isolation-network")
def test_a_cannot_reach_b_over_the_network(host, pair):
    a, b = pair
    a_ip, b_ip = session_ip(host, a), session_ip(host, b)
    assert probe(host, a, "connect", a_ip, "7000")["banner"] == f"tos-session {a}", "control: A reaches itself"
    # B really listens: the node itself reaches it.
    assert host.check_output(f"timeout 5 bash -c 'read -r line < /dev/tcp/{b_ip}/7000; echo $line'") == \
        f"tos-session {b}"
    assert probe(host, a, "connect", b_ip, "7000")["outcome"] != "allowed"


@pytest.mark.control("CIS 5.31")
def test_a_cannot_reach_the_docker_socket(host, pair):
    a, _ = pair
    assert probe(host, a, "docker-socket")["found"] == []
    gateway = next(iter(inspect(host, a)["NetworkSettings"]["Networks"].values()))["Gateway"]
    for port in ("2375", "2376"):
        assert probe(host, a, "connect", gateway, port)["outcome"] != "allowed"


@pytest.mark.parametrize("control,attack", [
    ("CIS 5.3 mount", ["mount"]),
    ("CIS 5.3 kernel-module", ["module"]),
    ("CIS 5.3 setuid", ["setuid"]),
    ("CIS 5.3 raw-socket", ["raw-socket"]),
    ("CIS 5.3 ptrace", ["ptrace", "1"]),
], ids=["mount", "module", "setuid", "raw-socket", "ptrace"])
def test_privileged_operations_are_refused(host, pair, control, attack):
    a, _ = pair
    result = probe(host, a, *attack)
    assert result["uid"] == 1000
    assert result["outcome"] in DENIED_BY_KERNEL, result


@pytest.mark.control("CIS 2.9")
def test_root_in_a_session_is_an_unprivileged_host_uid(target, host, pair):
    a, _ = pair
    pid = inspect(host, a)["State"]["Pid"]
    uid_map = host.file(f"/proc/{pid}/uid_map").content_string.split()
    assert uid_map[:2] == ["0", str(target.data["docker_subid_start"])]
    # The agent (uid 1000 inside) runs as start+1000 on the host; container root would be start.
    host_uid = host.check_output(f"awk '/^Uid:/ {{print $2}}' /proc/{pid}/status")
    assert host_uid == str(target.data["docker_subid_start"] + 1000)
    assert host.check_output(f"docker exec --user 0 tos-session-{a} id -u") == "0"
