"""The gate's stages (toskit/node/gate/stages.py) and its audit log (audit.py): nothing runs without a
prior stage and a matching approval after the wait; an approval for anything else, a replay, an
expired stage or a destructive command without a verified passkey is refused; every step is in a
hash chain whose first broken link is found."""

import json

import pytest

from toskit.gate_data import CommandGateData, tenant_policy
from toskit.node.gate import audit
from toskit.node.gate.stages import Gate, Refused

HOME = "/home/session"
PLAIN = {"approver": "dave", "credential": None, "user_verified": False}
PASSKEY = {"approver": "dave", "credential": "cred-1", "user_verified": True}


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def log_path(tmp_path):
    return str(tmp_path / ".tos" / "gate-audit.jsonl")


@pytest.fixture
def gate(clock, log_path):
    policy = tenant_policy(CommandGateData.model_validate(CommandGateData.defaults()), None)
    return Gate(policy, HOME, audit.AuditLog(log_path), clock)


def events(log_path) -> list:
    with open(log_path) as f:
        return [json.loads(line)["event"] for line in f]


def test_a_harmless_command_is_approved_once_after_the_wait(gate, clock, log_path):
    staged = gate.stage("ls -la", "dave")
    said = staged.said(gate.wait, gate.expires)
    assert said["verdict"] == "run" and said["shown"] == "ls -la" and said["approvable_at"] == 1002.0
    with pytest.raises(Refused, match="too soon"):
        gate.approve(staged.id, staged.digest, PLAIN)
    clock.now += 2
    assert gate.approve(staged.id, staged.digest, PLAIN).state == "approved"
    with pytest.raises(Refused, match="no such staged command"):  # a replay of the same approval
        gate.approve(staged.id, staged.digest, PLAIN)
    assert events(log_path) == ["staged", "refused", "approved", "refused"]


@pytest.mark.parametrize("what", ["another id", "a changed command", "no digest", "an id that is not text"])
def test_an_approval_for_anything_else_is_refused(gate, clock, what):
    staged, other = gate.stage("ls", "dave"), gate.stage("ls -la", "dave")
    clock.now += 5
    stage_id, digest = {"another id": ("0" * 16, staged.digest), "a changed command": (staged.id, other.digest),
                        "no digest": (staged.id, None), "an id that is not text": (["x"], staged.digest)}[what]
    with pytest.raises(Refused):
        gate.approve(stage_id, digest, PLAIN)
    assert gate.approve(staged.id, staged.digest, PLAIN).state == "approved"  # control: the right one holds


def test_a_stage_expires(gate, clock):
    staged = gate.stage("ls", "dave")
    clock.now += gate.expires
    with pytest.raises(Refused, match="no such staged command"):
        gate.approve(staged.id, staged.digest, PLAIN)


def test_a_destructive_command_needs_a_verified_passkey(gate, clock):
    staged = gate.stage("rm -rf ~/projects", "dave")
    assert staged.verdict == "destructive"
    clock.now += 5
    for approval in (PLAIN, {**PASSKEY, "user_verified": False}, {**PASSKEY, "credential": None}):
        with pytest.raises(Refused, match="passkey"):
            gate.approve(staged.id, staged.digest, approval)
    assert gate.approve(staged.id, staged.digest, PASSKEY).state == "approved"


def test_a_denied_or_unreadable_command_is_never_approved(gate, clock):
    denied, unreadable = gate.stage("curl x | sh", "dave"), gate.stage("echo $(id)", "dave")
    assert unreadable.verdict == "denied" and unreadable.digest is None and "command substitution" in unreadable.reasons[0]
    clock.now += 5
    for staged in (denied, unreadable):
        with pytest.raises(Refused, match="denies"):
            gate.approve(staged.id, staged.digest, PASSKEY)


def test_a_cancelled_stage_cannot_be_approved(gate, clock, log_path):
    staged = gate.stage("ls", "dave")
    gate.cancel(staged.id, "dave")
    clock.now += 5
    with pytest.raises(Refused):
        gate.approve(staged.id, staged.digest, PLAIN)
    assert events(log_path) == ["staged", "cancelled", "refused"]


def test_the_log_records_who_what_verdict_approver_credential_and_exit(gate, clock, log_path):
    staged = gate.stage("rm -r ~/old", "dave")
    clock.now += 3
    gate.ran(gate.approve(staged.id, staged.digest, PASSKEY), 0)
    with open(log_path) as f:
        lines = [json.loads(line) for line in f]
    assert lines[0]["by"] == "dave" and lines[0]["shown"] == "rm -r /home/session/old"
    assert lines[0]["verdict"] == "destructive" and lines[0]["reasons"] == ["rm: destructive (recursive)"]
    assert lines[1]["approver"] == "dave" and lines[1]["credential"] == "cred-1"
    assert lines[2]["event"] == "ran" and lines[2]["exit"] == 0
    assert audit.verify(log_path) == (3, None)


@pytest.fixture
def chain(gate, clock, log_path):
    for line in ("ls", "pwd", "id", "date"):
        gate.stage(line, "dave")
    with open(log_path) as f:
        return f.readlines()


@pytest.mark.parametrize(("tamper", "broken_at", "why"), [
    (lambda lines: lines[:1] + [lines[1].replace('"pwd"', '"rm"')] + lines[2:], 2, "does not match its hash"),
    (lambda lines: lines[:1] + lines[2:], 2, "prev is not the hash"),
    (lambda lines: [lines[1], lines[0]] + lines[2:], 1, "prev is not the hash"),
    (lambda lines: lines[:2] + [lines[1]] + lines[2:], 3, "prev is not the hash"),
    (lambda lines: lines[:3] + ["{not json\n"] + lines[3:], 4, "not JSON"),
])
def test_a_tampered_line_is_found(chain, log_path, tamper, broken_at, why):
    assert audit.verify(log_path) == (4, None)  # control: intact before
    with open(log_path, "w") as f:
        f.writelines(tamper(chain))
    at, said = audit.verify(log_path)
    assert at == broken_at and why in said


def test_the_verify_tool_says_intact_or_names_the_line(chain, log_path, capsys):
    assert audit.main([log_path]) == 0 and "4 entries, chain intact" in capsys.readouterr().out
    with open(log_path, "w") as f:
        f.writelines(chain[:2] + [chain[2].replace('"id"', '"ls"')] + chain[3:])
    assert audit.main([log_path]) == 1 and "line 3 breaks the chain" in capsys.readouterr().out


def test_a_log_is_continued_across_restarts(gate, clock, log_path):
    gate.stage("ls", "dave")
    again = audit.AuditLog(log_path)  # the agent started again (a cold start) on the same volume
    again.append("staged", id="x", by="dave", line="pwd")
    assert audit.verify(log_path) == (2, None)
