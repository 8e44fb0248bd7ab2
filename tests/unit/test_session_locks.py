"""tos-session changes one tenant's session one command at a time (tosnode/locks.py), and reports
what a broker places sessions by (`tos-session report`)."""

import json
import multiprocessing
import os
import signal
import time

import pytest

from toskit.node.tosnode import cli, locks, policy, sessions


@pytest.fixture(autouse=True)
def lock_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(locks, "LOCK_DIR", tmp_path / "locks")
    return tmp_path / "locks"


def _hold(lock_dir, tenant, held):
    locks.LOCK_DIR = lock_dir
    with locks.tenant_lock(tenant, "hibernate"):
        held.set()
        time.sleep(60)  # until the test kills it


@pytest.fixture
def held_by_another_process(lock_dir):
    """acme's lock held by a separate process (flock locks are per open file, as between commands)."""
    held = multiprocessing.Event()
    proc = multiprocessing.Process(target=_hold, args=(lock_dir, "acme", held))
    proc.start()
    assert held.wait(10)
    yield proc
    proc.kill()
    proc.join(10)


def test_a_second_command_waits_then_says_who_holds_the_session(held_by_another_process):
    started = time.monotonic()
    with pytest.raises(locks.Busy, match=rf"acme: another command is changing this session \(pid "
                                         rf"{held_by_another_process.pid}: tos-session hibernate acme, since "):
        with locks.tenant_lock("acme", "restore", wait=0.5):
            pytest.fail("ran beside the holder")
    assert time.monotonic() - started >= 0.5  # it waited before giving up


def test_another_tenant_is_not_held_up(held_by_another_process):
    with locks.tenant_lock("beta", "restore", wait=0):
        pass


def test_a_holder_killed_outright_leaves_no_stale_lock(held_by_another_process):
    os.kill(held_by_another_process.pid, signal.SIGKILL)
    held_by_another_process.join(10)
    with locks.tenant_lock("acme", "restore", wait=5):
        pass


def test_the_lock_is_taken_again_once_released():
    with locks.tenant_lock("acme", "stop", wait=0):
        pass
    with locks.tenant_lock("acme", "start", wait=0):
        assert "tos-session start acme" in locks.holder("acme")


@pytest.fixture
def tenants_file():
    return {"tenants": [{"id": "acme", "hibernate_after": 60}, {"id": "beta", "hibernate_after": 60}],
            "drained": False}


@pytest.mark.parametrize("command", [["restore", "acme"], ["stop", "acme"], ["hibernate", "acme"],
                                     ["volume", "close", "acme"]])
def test_a_busy_session_is_deferred_and_nothing_is_done(command, tenants_file, held_by_another_process,
                                                       monkeypatch, capsys):
    monkeypatch.setattr(locks, "WAIT", 0.3)
    monkeypatch.setattr(sessions, "load_tenants_file", lambda: tenants_file)
    for name in ("volume", "stop", "close_volume", "docker"):
        monkeypatch.setattr(sessions, name, lambda *a, **k: pytest.fail("changed a busy session"))
    assert cli.main(command) == 75
    assert "acme: another command is changing this session" in capsys.readouterr().err


def test_an_unknown_tenant_is_named_and_no_lock_is_made_for_it(tenants_file, lock_dir, monkeypatch, capsys):
    monkeypatch.setattr(sessions, "load_tenants_file", lambda: tenants_file)
    assert cli.main(["stop", "../../etc/x"]) == 1
    assert "unknown tenant '../../etc/x'" in capsys.readouterr().err
    assert not lock_dir.exists() or not any(lock_dir.iterdir())
    with locks.tenant_lock("acme", "stop", wait=0):  # control: a known tenant's lock is a file there
        assert [p.name for p in lock_dir.iterdir()] == ["acme"]


def test_the_idle_policy_passes_over_a_busy_session_and_acts_on_the_others(tenants_file, held_by_another_process,
                                                                         monkeypatch):
    seen = []
    monkeypatch.setattr(policy, "step", lambda tenants_file, t, now: seen.append(t["id"]) or f"{t['id']}: paused")
    monkeypatch.setattr(policy.hibernation, "log", lambda message: message)
    done, failed = policy.run(tenants_file)
    assert seen == ["beta"] and done == ["policy: beta: paused"] and failed == []


class FakeVolume:
    def __init__(self, mounted=False, lease=None, marker=None, state=None):
        self.mounted, self._lease, self.marker_json, self.state = mounted, lease, marker, state
        self.checkpoints = "checkpoints"

    def is_mounted(self):
        return self.mounted

    def lease(self):
        return self._lease


def test_the_report_says_where_each_session_is_and_how_much_memory_the_node_has(tenants_file, monkeypatch, tmp_path,
                                                                               capsys):
    from toskit.node.tosnode import checkpoints, freezer, hibernation
    volumes = {"acme": FakeVolume(mounted=True, lease={"node": "node1"}, state={"state": "running"}),
               "beta": FakeVolume(marker={"checkpoint": "cp-7", "bytes": 3 * 2**20, "node": "node2"})}
    monkeypatch.setattr(sessions, "load_tenants_file", lambda: tenants_file)
    monkeypatch.setattr(sessions, "volume", lambda tf, tid: volumes[tid])
    monkeypatch.setattr(freezer, "state", lambda tid: {"acme": "paused"}.get(tid))
    monkeypatch.setattr(checkpoints, "read_state", lambda folder: {"state": "running"})

    def marker(volume):
        path = tmp_path / "marker.json"
        if volume.marker_json is None:
            return tmp_path / "absent"
        path.write_text(json.dumps(volume.marker_json))
        return path
    monkeypatch.setattr(hibernation, "marker", marker)
    monkeypatch.setattr(cli.NodeConfig, "load", classmethod(lambda cls: type("C", (), {"name": "node1"})()))
    assert cli.main(["report"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["node"] == "node1" and report["drained"] is False
    assert 0 < report["memory"]["available_bytes"] <= report["memory"]["total_bytes"]
    assert report["sessions"] == [
        {"tenant": "acme", "here": "paused", "volume": "open", "state": "running", "lease": "node1",
         "checkpoint": None},
        {"tenant": "beta", "here": None, "volume": "closed", "state": "hibernated", "lease": None,
         "checkpoint": {"name": "cp-7", "bytes": 3 * 2**20, "node": "node2"}}]
    from toskit.gateway.portal.placement import NodeReport
    assert NodeReport.model_validate(report).live_sessions == 1  # what the broker reads, as the node writes it
    assert cli.main(["status"]) == 0  # the table reads the same report
    table = capsys.readouterr().out.splitlines()
    assert table[1].split() == ["acme", "paused", "open", "running", "-"]
    assert table[2].split() == ["beta", "-", "closed", "hibernated", "cp-7", "(3.0", "MiB,", "from", "node2)"]
