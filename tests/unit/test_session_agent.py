"""The session agent's channel (toskit/node/session_image/tos-session-agent), the real program: frames
of its state, input that changes it, and input it refuses without closing the channel."""

import json

import pytest
from websockets.sync.client import connect

from tests.unit.session_agent import running_agent


@pytest.fixture
def channel(tmp_path):
    with running_agent("acme", tmp_path) as port, connect(f"ws://127.0.0.1:{port}/", proxy=None) as ws:
        yield ws


def frame(ws) -> dict:
    message = json.loads(ws.recv(timeout=5))
    assert message["type"] == "frame", message
    return message


def test_a_frame_comes_at_once_and_then_each_second_with_the_counter_moving(channel):
    first = frame(channel)
    assert first["tenant"] == "acme" and first["path"] == [{"level": 1, "name": "Sectors"}] and first["apps"] == {}
    later = [frame(channel) for _ in range(3)]
    assert later[-1]["ticks"] > first["ticks"]


def test_a_pushed_sector_shows_in_the_next_frame_and_a_pop_takes_it_away(channel, tmp_path):
    frame(channel)
    channel.send(json.dumps({"cmd": "push", "level": 1, "name": "Engineering"}))
    assert frame(channel)["path"][-1] == {"level": 1, "name": "Engineering"}
    assert json.loads((tmp_path / ".tos" / "path.json").read_text())["path"][-1]["name"] == "Engineering"
    channel.send(json.dumps({"cmd": "pop"}))
    assert frame(channel)["path"] == [{"level": 1, "name": "Sectors"}]


@pytest.mark.parametrize("message", [
    "not json", "[1]", json.dumps({"cmd": "push", "level": 1, "name": "../etc"}),
    json.dumps({"cmd": "push", "level": 9, "name": "Bridge"}), json.dumps({"cmd": "push", "level": 1, "name": "x" * 33}),
    json.dumps({"cmd": "launch", "name": "Editor", "blob_mb": 4096}),
    json.dumps({"cmd": "launch", "name": "rm -rf", "blob_mb": 1})])
def test_bad_input_is_answered_with_an_error_and_changes_nothing(channel, message):
    before = frame(channel)["path"]
    channel.send(message)
    assert json.loads(channel.recv(timeout=5))["type"] == "error"
    assert frame(channel)["path"] == before
