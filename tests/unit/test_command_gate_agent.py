"""The command gate in the real session agent, on its channel: the gateway's policy, then stage, approve,
the command's output and exit status streamed back, to every tab; refusals; the audit chain."""

import json
import time

import pytest
from websockets.sync.client import connect

from toskit.gate_data import CommandGateData, tenant_policy
from toskit.node.gate import audit
from tests.unit.session_agent import running_agent

POLICY = {**tenant_policy(CommandGateData.model_validate(CommandGateData.defaults()), None), "wait_seconds": 0.3}
GATEWAY = {"person": "dave", "approver": "dave", "credential": None, "user_verified": False}


@pytest.fixture
def agent(tmp_path):
    with running_agent("acme", tmp_path) as port:
        yield port


def opened(port):
    """A tab's channel, the gate's policy sent as the gateway sends it."""
    ws = connect(f"ws://127.0.0.1:{port}/", proxy=None)
    ws.send(json.dumps({"cmd": "gate", "gateway": {"policy": POLICY}}))
    assert until(ws, "gate")["wait"] == 0.3
    return ws


def until(ws, kind: str, timeout: float = 10) -> dict:
    """The next message of that type (frames and other events passed over)."""
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(ws.recv(timeout=max(deadline - time.monotonic(), 0.01)))
        if message["type"] == kind:
            return message


def ran(ws, line: str, gateway: dict = GATEWAY) -> tuple:
    """Staged, approved after the wait: (the stage, its output, its exit)."""
    ws.send(json.dumps({"cmd": "stage", "line": line, "gateway": GATEWAY}))
    staged = until(ws, "staged")
    time.sleep(0.35)
    ws.send(json.dumps({"cmd": "approve", "id": staged["id"], "digest": staged["digest"], "gateway": gateway}))
    assert until(ws, "approved")["id"] == staged["id"]
    output = ""
    while (message := until_either(ws))["type"] == "output":
        output += message["data"]
    assert message["id"] == staged["id"]
    return staged, output, message["exit"]


def until_either(ws) -> dict:
    while (message := json.loads(ws.recv(timeout=10)))["type"] not in ("output", "exited"):
        pass
    return message


def test_an_approved_command_runs_and_its_output_and_exit_come_back(agent, tmp_path):
    with opened(agent) as ws:
        staged, output, status = ran(ws, "echo 'hello gate'")
        assert staged["verdict"] == "run" and staged["shown"] == "echo 'hello gate'" and staged["commands"] == ["echo"]
        assert output == "hello gate\n" and status == 0
        _, output, status = ran(ws, "ls ~/nothing-here")
        assert status == 2 and "No such file" in output
        _, output, status = ran(ws, "echo one > ~/f && cat ~/f | wc -l")  # by bash: the reading's own script
        assert output.strip() == "1" and status == 0 and (tmp_path / "f").read_text() == "one\n"
    assert audit.verify(str(tmp_path / ".tos" / "gate-audit.jsonl")) == (9, None)


def test_nothing_runs_before_the_wait_or_for_another_command(agent, tmp_path):
    with opened(agent) as ws:
        ws.send(json.dumps({"cmd": "stage", "line": "touch ~/made", "gateway": GATEWAY}))
        staged = until(ws, "staged")
        ws.send(json.dumps({"cmd": "approve", "id": staged["id"], "digest": staged["digest"], "gateway": GATEWAY}))
        assert "too soon" in until(ws, "refused")["error"]
        time.sleep(0.35)
        ws.send(json.dumps({"cmd": "approve", "id": staged["id"], "digest": "0" * 64, "gateway": GATEWAY}))
        assert "another command" in until(ws, "refused")["error"]
        ws.send(json.dumps({"cmd": "approve", "id": staged["id"], "digest": staged["digest"]}))  # not via a gateway
        assert "through the gateway" in until(ws, "refused")["error"]
        time.sleep(0.5)
        assert not (tmp_path / "made").exists()
        ws.send(json.dumps({"cmd": "approve", "id": staged["id"], "digest": staged["digest"], "gateway": GATEWAY}))
        until(ws, "exited")
        assert (tmp_path / "made").exists()  # control: the same approval, right, runs it


def test_a_destructive_command_waits_for_a_passkey_the_gateway_verified(agent, tmp_path):
    (tmp_path / "old").mkdir()
    with opened(agent) as ws:
        ws.send(json.dumps({"cmd": "stage", "line": "rm -r ~/old", "gateway": GATEWAY}))
        staged = until(ws, "staged")
        assert staged["verdict"] == "destructive"
        time.sleep(0.35)
        ws.send(json.dumps({"cmd": "approve", "id": staged["id"], "digest": staged["digest"], "gateway": GATEWAY}))
        assert "passkey" in until(ws, "refused")["error"] and (tmp_path / "old").exists()
        verified = {**GATEWAY, "credential": "cred-1", "user_verified": True}
        ws.send(json.dumps({"cmd": "approve", "id": staged["id"], "digest": staged["digest"], "gateway": verified}))
        assert until(ws, "exited")["exit"] == 0 and not (tmp_path / "old").exists()


def test_output_arrives_whole_whatever_its_characters(agent, tmp_path):
    """Read 4096 bytes at a time: a character split between two reads still arrives whole."""
    (tmp_path / "wide.txt").write_text("x" + "é" * 5000)  # 10001 bytes: byte 4096 is inside an é
    with opened(agent) as ws:
        _, output, status = ran(ws, "cat ~/wide.txt")
    assert status == 0 and output == "x" + "é" * 5000


def test_every_tab_sees_the_output(agent):
    with opened(agent) as first, opened(agent) as second:
        _, output, _ = ran(first, "echo both")
        assert output == "both\n"
        assert until(second, "output")["data"] == "both\n" and until(second, "exited")["exit"] == 0


def test_a_command_staged_while_the_gate_loads_is_answered_once_it_has(tmp_path):
    """Staged at once after the agent started (a person quick at the prompt): no refusal, a stage."""
    with running_agent("acme", tmp_path) as port, connect(f"ws://127.0.0.1:{port}/", proxy=None) as ws:
        ws.send(json.dumps({"cmd": "gate", "gateway": {"policy": POLICY}}))
        ws.send(json.dumps({"cmd": "stage", "line": "ls", "gateway": GATEWAY}))
        assert until(ws, "staged")["verdict"] == "run"


def test_no_gate_without_the_gateways_policy(agent):
    with connect(f"ws://127.0.0.1:{agent}/", proxy=None) as ws:
        ws.send(json.dumps({"cmd": "stage", "line": "ls", "gateway": GATEWAY}))
        assert "no policy" in until(ws, "refused")["error"]
        ws.send(json.dumps({"cmd": "gate", "gateway": {"policy": {"commands": {}}}}))
        assert until(ws, "refused")["error"] == "not a gate policy"
