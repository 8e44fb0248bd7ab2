"""The gate's stages: a command line staged, read and judged, then approved (once, after the wait,
before it expires, for exactly what was read) and run, or cancelled. Every step is in the audit log
before it takes effect.

Approvals come through the gateway, which alone may vouch for a passkey (the session channel's
relay there drops what a browser says of passkeys: toskit/gateway/portal): {"approver": who,
"credential": the passkey's id or None, "user_verified": the gateway verified an assertion whose
challenge holds this stage's digest}. A destructive command needs the last.
"""

import secrets
import time
from dataclasses import dataclass, field

from .audit import AuditLog
from .policy import judge, strictest
from .reading import Unreadable, read

MOST_STAGES = 32  # waiting at once in one session (older ones are dropped, as expired)


class Refused(Exception):
    """An approval or cancel that does not hold; the message says why (to the person and the log)."""


@dataclass
class Stage:
    id: str
    line: str
    staged_by: str
    staged_at: float
    verdict: str
    reasons: tuple
    notes: tuple = ()
    reading: object = None  # reading.Reading; None when the line could not be read
    state: str = "staged"   # staged -> approved (then it runs) | cancelled | expired
    exit: int | None = None
    output: list = field(default_factory=list)

    @property
    def digest(self) -> str | None:
        return self.reading.digest if self.reading else None

    def said(self, wait: float, expires: float) -> dict:
        """The stage as the person is shown it."""
        return {"type": "staged", "id": self.id, "by": self.staged_by, "line": self.line, "verdict": self.verdict,
                "reasons": list(self.reasons), "notes": list(self.notes),
                "commands": [c.argv[0] for c in self.reading.commands] if self.reading else [],
                "shown": self.reading.shown if self.reading else None, "digest": self.digest,
                "shell": self.reading.needs_shell if self.reading else None,
                "wait_seconds": wait, "approvable_at": round(self.staged_at + wait, 3), "expires_at": round(self.staged_at + expires, 3)}


class Gate:
    def __init__(self, policy: dict, home: str, audit: AuditLog, clock=time.time):
        self.policy, self.home, self.audit, self.clock = policy, home, audit, clock
        self.wait, self.expires = float(policy["wait_seconds"]), float(policy["expires_seconds"])
        self.stages: dict = {}

    def stage(self, line: str, staged_by: str) -> Stage:
        if not isinstance(line, str):
            raise Refused("a staged command is a line of text")
        try:
            reading = read(line, self.home)
            verdict = judge(reading, self.policy, self.home)
            found = Stage(secrets.token_hex(8), line, staged_by, self.clock(), verdict.verdict, verdict.reasons,
                          reading.notes, reading)
        except Unreadable as e:
            found = Stage(secrets.token_hex(8), line, staged_by, self.clock(), "denied", tuple(e.args))
        except Exception as e:  # noqa: BLE001 a policy that cannot judge it denies it (default deny)
            found = Stage(secrets.token_hex(8), line, staged_by, self.clock(), "denied",
                          (f"the policy could not judge it ({type(e).__name__}: {e})",))
        self.audit.append("staged", id=found.id, by=staged_by, line=found.line, shown=found.reading and
                          found.reading.shown, verdict=found.verdict, reasons=list(found.reasons))
        self._expire()
        self.stages[found.id] = found
        while len(self.stages) > MOST_STAGES:
            self._end(self.stages[next(iter(self.stages))], "expired")
        return found

    def approve(self, stage_id, digest, approval: dict) -> Stage:
        """The stage, now approved (the caller runs it), or Refused; either way it is in the audit log."""
        self._expire()
        found = self.stages.get(stage_id) if isinstance(stage_id, str) else None
        try:
            if found is None:
                raise Refused("no such staged command (approved already, cancelled, expired, or never staged)")
            if digest != found.digest:
                raise Refused("the approval is for another command than the one staged (its digest differs)")
            if found.reading is not None:  # judged again now: the policy or the links may have changed since
                found.verdict = strictest([found.verdict, judge(found.reading, self.policy, self.home).verdict])
            if found.verdict == "denied":
                raise Refused("the gate denies this command: " + "; ".join(found.reasons))
            if self.clock() < found.staged_at + self.wait:
                raise Refused(f"too soon: a staged command waits {self.wait:g} s before it can be approved")
            if found.verdict == "destructive" and not (approval.get("user_verified") and approval.get("credential")):
                raise Refused("a destructive command needs a passkey assertion for exactly this command")
        except Refused as e:
            self.audit.append("refused", id=stage_id if isinstance(stage_id, str) else None,
                              approver=approval.get("approver"), credential=approval.get("credential"), why=str(e))
            raise
        self.audit.append("approved", id=found.id, approver=approval.get("approver"),
                          credential=approval.get("credential"), verdict=found.verdict, digest=found.digest)
        found.state = "approved"
        del self.stages[found.id]  # an approval is used once: a replay finds no stage
        return found

    def cancel(self, stage_id, by: str) -> Stage:
        found = self.stages.get(stage_id) if isinstance(stage_id, str) else None
        if found is None:
            raise Refused("no such staged command")
        self._end(found, "cancelled", by=by)
        return found

    def ran(self, found: Stage, exit_status: int) -> None:
        found.exit = exit_status
        self.audit.append("ran", id=found.id, exit=exit_status)

    def _expire(self) -> None:
        now = self.clock()
        for found in [s for s in self.stages.values() if now >= s.staged_at + self.expires]:
            self._end(found, "expired")

    def _end(self, found: Stage, state: str, **fields) -> None:
        found.state = state
        self.stages.pop(found.id, None)
        self.audit.append(state, id=found.id, **fields)
