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
    json.dumps({"cmd": "push", "level": 9, "name": "Bridge"}),
    json.dumps({"cmd": "push", "level": 1, "name": "x" * 33}),
    json.dumps({"cmd": "launch", "name": "Editor", "blob_mb": 4096}),
    json.dumps({"cmd": "launch", "name": "rm -rf", "blob_mb": 1}),
    json.dumps({"cmd": "pop", "tab": "t", "seq": 0}), json.dumps({"cmd": "pop", "tab": "", "seq": 1})])
def test_bad_input_is_answered_with_an_error_and_changes_nothing(channel, message):
    before = frame(channel)["path"]
    channel.send(message)
    assert json.loads(channel.recv(timeout=5))["type"] == "error"
    assert frame(channel)["path"] == before


def test_input_sent_again_after_a_reconnect_is_applied_once(tmp_path):
    with running_agent("acme", tmp_path) as port:
        push = {"cmd": "push", "level": 1, "name": "Bridge", "tab": "tab-1", "seq": 1}
        with connect(f"ws://127.0.0.1:{port}/", proxy=None) as first:
            frame(first)
            first.send(json.dumps(push))
            assert frame(first)["acked"] == 1
        with connect(f"ws://127.0.0.1:{port}/", proxy=None) as again:  # the tab did not see the ack: sends again
            frame(again)
            again.send(json.dumps(push))
            answer = frame(again)
            again.send(json.dumps({**push, "name": "Sickbay", "seq": 2}))  # control: new input is applied
            last = frame(again)
    assert answer["acked"] == 1 and [e["name"] for e in answer["path"]] == ["Sectors", "Bridge"]
    assert last["acked"] == 2 and [e["name"] for e in last["path"]] == ["Sectors", "Bridge", "Sickbay"]


def test_input_without_a_number_keeps_the_tabs_acknowledgement(channel):
    frame(channel)
    channel.send(json.dumps({"cmd": "push", "level": 1, "name": "Bridge", "tab": "tab-1", "seq": 1}))
    assert frame(channel)["acked"] == 1
    channel.send(json.dumps({"cmd": "pop"}))  # from tos-session-ctl's kind of client: no tab, no seq
    assert frame(channel)["acked"] == 1
