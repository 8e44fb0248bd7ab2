"""Tenant isolation, proven by attack: from tenant A's live session, try to reach tenant B and the
host. Every attempt really runs (tos-probe performs the syscall or connection and reports what
stopped it), and each has a control attempt that shows the probe would have noticed success.

Needs two declared tenants; starts their sessions if they are not running and stops what it started.
"""

import pytest

from tests.audit.sessions import inspect, probe, session_ip

pytestmark = pytest.mark.groups("nodes")
DENIED_BY_KERNEL = {"EPERM", "EACCES"}


@pytest.mark.control("tos-isolation-01")
def test_a_cannot_see_b_or_host_processes(host, pair):
    a, b = pair
    [result] = probe(host, a, ["processes"])
    visible = result["visible"]
    assert any(f"--tenant {a}" in cmd for cmd in visible), "control: A must see its own agent"
    assert not any(f"--tenant {b}" in cmd for cmd in visible)
    assert not any(word in cmd for cmd in visible for word in ("dockerd", "sshd", "systemd", "containerd"))


@pytest.mark.control("tos-isolation-02")
def test_a_cannot_read_b_files(host, pair):
    a, b = pair
    b_pid = inspect(host, b)["State"]["Pid"]
    own, *others = probe(host, a, ["read", "/home/session/.tos/path.json"],
                         ["read", f"/proc/{b_pid}/root/home/session/.tos/path.json"],
                         ["read", f"/proc/{b_pid}/environ"])
    assert own["outcome"] == "allowed", "control: A reads its own home"
    assert [r["outcome"] for r in others if r["outcome"] == "allowed"] == [], others


@pytest.mark.control("tos-isolation-03")
def test_a_cannot_reach_b_over_the_network(host, pair):
    a, b = pair
    a_ip, b_ip = session_ip(host, a), session_ip(host, b)
    # B really listens: the node itself reaches its channel, which answers a plain GET with its banner.
    assert host.check_output(f"curl -sS --max-time 5 http://{b_ip}:7000/") == f"tos-session {b}"
    own, other = probe(host, a, ["http", a_ip, "7000"], ["http", b_ip, "7000"])
    assert own.get("banner") == f"tos-session {a}", "control: A reaches its own listener"
    assert other["outcome"] != "allowed", other


@pytest.mark.control("cis-docker-5.31")
def test_a_cannot_reach_the_docker_socket(host, pair):
    a, _ = pair
    gateway = next(iter(inspect(host, a)["NetworkSettings"]["Networks"].values()))["Gateway"]
    socket_files, *tcp = probe(host, a, ["docker-socket"], ["connect", gateway, "2375"], ["connect", gateway, "2376"])
    assert socket_files["found"] == []
    assert [r for r in tcp if r["outcome"] == "allowed"] == [], tcp


# CIS 5.3 (capabilities dropped), attempted: each attack a case of its own.
PRIVILEGED = [("cis-docker-5.3", ["mount"]), ("cis-docker-5.3", ["module"]), ("cis-docker-5.3", ["setuid"]),
              ("cis-docker-5.3", ["raw-socket"]), ("cis-docker-5.3", ["ptrace", "1"])]


@pytest.fixture
def privileged_attempts(host, pair, request):
    """All privileged attempts, in one exec per host, as (attack -> result)."""
    cache = request.config.__dict__.setdefault("_tos_privileged", {})
    if host.backend.hostname not in cache:
        results = probe(host, pair[0], *(attack for _, attack in PRIVILEGED))
        cache[host.backend.hostname] = {r["attack"][0]: r for r in results}
    return cache[host.backend.hostname]


@pytest.mark.parametrize("control,attack", PRIVILEGED, ids=[a[0] for _, a in PRIVILEGED])
def test_privileged_operations_are_refused(privileged_attempts, control, attack):
    result = privileged_attempts[attack[0]]
    assert result["uid"] == 1000
    assert result["outcome"] in DENIED_BY_KERNEL, result


@pytest.mark.control("cis-docker-2.9")
def test_root_in_a_session_is_an_unprivileged_host_uid(target, host, pair):
    a, _ = pair
    pid = inspect(host, a)["State"]["Pid"]
    uid_map = host.file(f"/proc/{pid}/uid_map").content_string.split()
    assert uid_map[:2] == ["0", str(target.data["docker_subid_start"])]
    # The agent (uid 1000 inside) runs as start+1000 on the host; container root would be start.
    host_uid = host.check_output(f"awk '/^Uid:/ {{print $2}}' /proc/{pid}/status")
    assert host_uid == str(target.data["docker_subid_start"] + 1000)
    assert host.check_output(f"docker exec --user 0 tos-session-{a} id -u") == "0"
