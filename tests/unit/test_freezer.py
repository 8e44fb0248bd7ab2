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
    return fake


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


@pytest.fixture
def tree():
    """A shell (the session's init) with a child, and a process outside its tree (an exec'd one)."""
    init = subprocess.Popen(["sh", "-c", "sleep 60 & wait"])
    stranger = subprocess.Popen(["sleep", "60"])
    deadline = time.monotonic() + 10
    while not (children := _children(init.pid)):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    yield init.pid, children[0], stranger.pid
    for proc in (init, stranger):
        proc.kill()
        proc.wait()
    for child in children:
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _children(pid: int) -> list:
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        found += [int(c) for c in open(f"/proc/{pid}/task/{task}/children").read().split()]
    return found


def test_processes_outside_the_inits_tree_are_strangers(tree, tmp_path):
    init, child, stranger = tree
    (tmp_path / "cgroup.procs").write_text(f"{init}\n{child}\n{stranger}\n999999999\n")
    assert freezer.strangers(tmp_path, init) == [(stranger, "sleep")]


def test_the_hold_waits_until_every_task_has_stopped(tree, tmp_path, monkeypatch):
    init, child, _ = tree
    for listing in ("cgroup.threads", "cgroup.procs"):
        (tmp_path / listing).write_text(f"{init}\n{child}\n")
    monkeypatch.setattr(freezer, "FREEZE_TIMEOUT", 0.2)
    with pytest.raises(NodeError, match="did not stop"):  # and they are sent SIGCONT, left as they were
        freezer._wait_stopped(tmp_path, "acme")
    for pid in (init, child):
        os.kill(pid, signal.SIGSTOP)
    freezer._wait_stopped(tmp_path, "acme")  # returns once both are stopped
    assert {freezer._task_state(str(pid)) for pid in (init, child)} == {"T"}
    assert freezer._task_state("999999999") == "X"


def test_the_hold_thaws_behind_dockers_pause_and_freezes_again(cgroups, monkeypatch):
    for listing in ("cgroup.threads", "cgroup.procs"):
        (cgroups.container / listing).write_text("")
    monkeypatch.setattr(freezer.sessions, "state", lambda tenant: "paused")
    monkeypatch.setattr(freezer.dockerapi, "call", lambda *a: pytest.fail("Docker's pause is kept: no call"))
    assert freezer.hold_for_checkpoint("acme") == cgroups.container
    assert cgroups.log == [("docker-ab.scope", "cgroup.freeze", "0"), ("docker-ab.scope", "cgroup.freeze", "1")]
