"""The freezer's hand-over of a paused session to Docker and its hold for a checkpoint, on fake
cgroup files (their writes recorded in order) and real processes where /proc is read. On the lab,
test_4 pauses, holds and checkpoints real sessions that Docker probes every 5 s."""

import os
import signal
import subprocess
import time

import pytest

from toskit.node.tosnode import freezer
from toskit.node.tosnode.errors import NodeError


class Cgroups:
    """A tenant slice and its container's cgroup as files; every write to a cgroup.freeze is logged."""

    def __init__(self, root):
        self.slice = root / "tos-tenant-acme.slice"
        self.container = self.slice / "docker-ab.scope"
        self.container.mkdir(parents=True)
        self.log = []
        for cgroup in (self.slice, self.container):
            (cgroup / "cgroup.freeze").write_text("0\n")
            (cgroup / "cgroup.events").write_text("populated 1\nfrozen 1\n")

    def write(self, path, text):
        self.log.append((path.parent.name, path.name, text))
        return path.write_bytes(text.encode())


@pytest.fixture
def cgroups(tmp_path, monkeypatch):
    fake = Cgroups(tmp_path)
    real_write_text = type(tmp_path).write_text
    monkeypatch.setattr(type(tmp_path), "write_text",
                        lambda path, text, *a, **k: fake.write(path, text) if path.name == "cgroup.freeze"
                        else real_write_text(path, text, *a, **k))
    monkeypatch.setattr(freezer, "cgroup_of", lambda tenant, pid=None: fake.container)
    monkeypatch.setattr(freezer, "signal_all", lambda cgroup, signum: fake.log.append((cgroup.name, "signal", signum)))
    return fake


def set_frozen(cgroup, frozen: bool) -> None:
    (cgroup / "cgroup.events").write_text(f"populated 1\nfrozen {int(frozen)}\n")


def test_the_pause_goes_to_docker_with_the_slice_holding_the_freeze_meanwhile(cgroups, monkeypatch):
    calls = []
    monkeypatch.setattr(freezer.dockerapi, "call", lambda method, path: calls.append((method, path, list(cgroups.log))))
    freezer.freeze("acme")
    container, slice_ = cgroups.container.name, cgroups.slice.name
    assert cgroups.log == [(container, "cgroup.freeze", "1"), (slice_, "cgroup.freeze", "1"),
                           (container, "cgroup.freeze", "0"), (slice_, "cgroup.freeze", "0")]
    # Docker was asked once the container's own freeze was lifted and the slice's still held.
    assert [(m, p) for m, p, _ in calls] == [("POST", "/containers/tos-session-acme/pause")]
    assert calls[0][2] == cgroups.log[:3]


def test_a_refused_pause_leaves_the_session_frozen_and_says_so(cgroups, monkeypatch):
    def refuse(method, path):
        raise NodeError("dockerd does not answer")
    monkeypatch.setattr(freezer.dockerapi, "call", refuse)
    with pytest.raises(NodeError, match="paused, but dockerd did not take the pause"):
        freezer.freeze("acme")
    assert (cgroups.container / "cgroup.freeze").read_text() == "1"
    assert (cgroups.slice / "cgroup.freeze").read_text() == "0"


def test_a_container_outside_a_tenant_slice_is_never_frozen_from_above(cgroups, monkeypatch, tmp_path):
    outside = tmp_path / "system.slice" / "docker-ab.scope"
    outside.mkdir(parents=True)
    with pytest.raises(NodeError, match="not in a tenant slice"):
        freezer.hand_to_docker("acme", outside)
    assert cgroups.log == []


def test_a_freeze_that_does_not_happen_is_undone_unless_a_hold_needs_it_kept(cgroups, monkeypatch):
    monkeypatch.setattr(freezer, "FREEZE_TIMEOUT", 0.05)
    set_frozen(cgroups.container, False)
    with pytest.raises(NodeError, match="left running"):
        freezer._freeze(cgroups.container, "acme")
    assert (cgroups.container / "cgroup.freeze").read_text() == "0"
    with pytest.raises(NodeError, match="stays asked for"):
        freezer._freeze(cgroups.container, "acme", undo_on_timeout=False)
    assert (cgroups.container / "cgroup.freeze").read_text() == "1"


def test_the_hold_stops_the_tasks_before_thawing_them_behind_dockers_pause(cgroups, monkeypatch):
    (cgroups.container / "cgroup.threads").write_text("")
    monkeypatch.setattr(freezer.sessions, "state", lambda tenant: "paused")
    monkeypatch.setattr(freezer.dockerapi, "call", lambda *a: pytest.fail("Docker's pause is kept: no call"))
    assert freezer.hold_for_checkpoint("acme") == cgroups.container
    assert cgroups.log == [("docker-ab.scope", "signal", signal.SIGSTOP), ("docker-ab.scope", "cgroup.freeze", "0"),
                           ("docker-ab.scope", "cgroup.freeze", "1")]


def test_only_a_session_paused_in_docker_is_held(cgroups, monkeypatch):
    monkeypatch.setattr(freezer.sessions, "state", lambda tenant: "running")
    with pytest.raises(NodeError, match="not paused in Docker"):
        freezer.hold_for_checkpoint("acme")
    assert cgroups.log == []


def test_resume_freezes_a_held_container_again_before_docker_unpauses_it(cgroups, monkeypatch):
    """runc resumes only a container whose own cgroup it finds frozen; a cut-short hold left it thawed."""
    calls = []
    monkeypatch.setattr(freezer.sessions, "state", lambda tenant: "paused")
    monkeypatch.setattr(freezer.dockerapi, "call", lambda method, path: calls.append((path, list(cgroups.log))))
    freezer.thaw("acme")
    assert calls == [("/containers/tos-session-acme/unpause", [("docker-ab.scope", "cgroup.freeze", "1")])]
    assert cgroups.log[1:] == [("docker-ab.scope", "cgroup.freeze", "0"), ("tos-tenant-acme.slice", "cgroup.freeze", "0"),
                               ("docker-ab.scope", "signal", signal.SIGCONT)]


def _spawn_tree(argv: list):
    """A process whose command runs one child; returns (process, child pid)."""
    proc = subprocess.Popen(argv)
    deadline = time.monotonic() + 10
    while not (children := _children(proc.pid)):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return proc, children[0]


@pytest.fixture
def tree(tmp_path):
    """A shell (the session's init) with a child; a process outside its tree (an exec'd one); and a
    process named as Docker's probe is (its script), with a child, outside it too."""
    probe_script = tmp_path / "tos-session-health"
    probe_script.write_text("#!/bin/sh\nsleep 60 &\nwait\n")
    probe_script.chmod(0o755)
    init, child = _spawn_tree(["sh", "-c", "sleep 60 & wait"])
    probe, probe_child = _spawn_tree([str(probe_script)])
    stranger = subprocess.Popen(["sleep", "60"])
    yield init.pid, child, stranger.pid, probe.pid, probe_child
    for proc in (init, stranger, probe):
        proc.kill()
        proc.wait()
    for pid in (child, probe_child):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _children(pid: int) -> list:
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        found += [int(c) for c in open(f"/proc/{pid}/task/{task}/children").read().split()]
    return found


def test_processes_outside_the_inits_tree_are_strangers_and_dockers_probes_are_told_apart(tree, tmp_path):
    init, child, stranger, probe, probe_child = tree
    (tmp_path / "cgroup.procs").write_text(f"{init}\n{child}\n{stranger}\n{probe}\n{probe_child}\n999999999\n")
    assert sorted(freezer.strangers(tmp_path, init)) == sorted([
        (stranger, "sleep", False), (probe, "tos-session-hea", True), (probe_child, "sleep", True)])


def test_the_hold_waits_until_every_task_has_stopped(tree, tmp_path, monkeypatch):
    init, child = tree[:2]
    for listing in ("cgroup.threads", "cgroup.procs"):
        (tmp_path / listing).write_text(f"{init}\n{child}\n")
    with monkeypatch.context() as short:
        short.setattr(freezer, "FREEZE_TIMEOUT", 0.2)
        with pytest.raises(NodeError, match="did not stop"):  # and they are sent SIGCONT, left as they were
            freezer._wait_stopped(tmp_path, "acme")
    for pid in (init, child):
        os.kill(pid, signal.SIGSTOP)
    freezer._wait_stopped(tmp_path, "acme")  # returns once both are stopped
    assert {freezer._task_state(str(pid)) for pid in (init, child)} == {"T"}
    assert freezer._task_state("999999999") == "X"


@pytest.mark.parametrize("status", ["exited", "created", "paused"])
def test_a_container_that_is_not_running_is_its_docker_state_without_a_cgroup_read(monkeypatch, status):
    """After a reboot a session's container is left exited, Pid 0: there is no /proc/0/cgroup, and
    start, restore and status must still see it (they replace or report it)."""
    from toskit.node.tosnode import sessions
    monkeypatch.setattr(sessions, "container", lambda tenant_id: {"State": {"Status": status, "Pid": 0}})
    monkeypatch.setattr(freezer, "container_pid", lambda tenant_id: 0)
    assert freezer.state("acme") == status


def test_a_running_container_frozen_by_its_slice_is_paused(cgroups, monkeypatch):
    from toskit.node.tosnode import sessions
    monkeypatch.setattr(sessions, "container", lambda tenant_id: {"State": {"Status": "running", "Pid": 4242}})
    assert freezer.state("acme") == "running"  # control: nothing frozen
    (cgroups.slice / "cgroup.freeze").write_bytes(b"1\n")
    assert freezer.state("acme") == "paused"
