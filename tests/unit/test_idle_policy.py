"""The idle policy's decisions (the lab tests run it for real, through its systemd unit)."""

import pytest

from toskit.node.tosnode import hibernation, policy

TENANT = {"id": "acme", "hibernate_after": 600}


@pytest.fixture
def node(monkeypatch, tmp_path):
    """A node with one session whose docker state and client count the test sets."""
    world = {"state": "running", "clients": 0, "calls": []}
    monkeypatch.setattr(policy, "IDLE_DIR", tmp_path)
    monkeypatch.setattr(policy.freezer, "state", lambda tid: world["state"])
    monkeypatch.setattr(hibernation, "clients", lambda tid: world["clients"])
    for action in ("pause", "resume", "hibernate"):
        monkeypatch.setattr(hibernation, action, lambda tenants_file, tid, a=action: world["calls"].append(a) or a)
    return world


def test_a_session_without_client_is_paused_at_once_and_hibernated_after_its_timeout(node):
    assert policy.step({}, TENANT, 1000.0) == "pause (no client)"
    node["state"] = "paused"
    assert policy.step({}, TENANT, 1599.0) is None  # 599 s: not yet
    assert policy.step({}, TENANT, 1600.0) == "hibernate (no client for 600 s)"
    assert node["calls"] == ["pause", "hibernate"]


def test_a_client_wakes_a_paused_session_and_restarts_the_clock(node):
    policy.step({}, TENANT, 1000.0)
    node.update(state="paused", clients=1)
    assert policy.step({}, TENANT, 1300.0) == "resume (a client connected)"
    node.update(state="running", clients=0)
    assert policy.step({}, TENANT, 1400.0) == "pause (no client)"
    node["state"] = "paused"
    assert policy.step({}, TENANT, 1900.0) is None  # 500 s since the client left, not 900
    assert node["calls"] == ["pause", "resume", "pause"]


def test_connected_sessions_and_absent_ones_are_left_alone(node):
    node["clients"] = 2
    assert policy.step({}, TENANT, 1000.0) is None
    node["state"] = None
    assert policy.step({}, TENANT, 5000.0) is None
    assert node["calls"] == []
