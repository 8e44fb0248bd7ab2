"""Placement: where a person's session is, or should go, from the nodes' own reports.

Each node answers `tos-session report` (toskit/node/tosnode/cli.py): its memory, whether it is
drained, and for every tenant it serves where that tenant's session is. The broker asks every node
at once; a node that does not answer in time is passed over (its entry is the error). Then:

1. A session running or paused on a node: attach (resume if paused) there, drained or not.
2. Its volume leased by a node: that node alone may act on it. Being checkpointed or restored there:
   try again shortly; open there without a live session: start (or restore) it there. The holder
   does not answer: refused, with what an operator does; the broker never takes a lease over by
   itself (that is for a node known to be gone).
3. Otherwise: restore it if it hibernated, else start it, on the node that keeps the most memory
   free once the session's memory limit is taken from what it has available; among equals, the
   one running fewer sessions; then by name, so the choice is reproducible. Drained nodes, nodes
   that do not serve the tenant, and nodes without room for the limit are never chosen.
"""

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# Newer nodes may report more than this gateway knows: extra keys are ignored, missing ones refused.
_LENIENT = ConfigDict(extra="ignore", frozen=True)
LIVE = ("running", "paused")
CHANGING = ("checkpointing", "restoring")  # a tos-session command is at work on the volume: wait for it


class Memory(BaseModel):
    model_config = _LENIENT
    total_bytes: int = Field(gt=0)
    available_bytes: int = Field(ge=0)


class SessionReport(BaseModel):
    model_config = _LENIENT
    tenant: str
    here: str | None            # Docker's state of its container on this node, paused if frozen
    volume: Literal["open", "leased", "closed"]
    state: str                  # running, paused, checkpointing, ... (open); elsewhere, hibernated, stopped
    lease: str | None           # the node holding the volume's lease


class NodeReport(BaseModel):
    model_config = _LENIENT
    node: str
    drained: bool
    memory: Memory
    sessions: list[SessionReport]

    def session(self, tenant_id: str) -> SessionReport | None:
        return next((s for s in self.sessions if s.tenant == tenant_id), None)

    @property
    def live_sessions(self) -> int:
        return sum(s.here in LIVE for s in self.sessions)


@dataclass(frozen=True)
class Decision:
    action: Literal["attach", "resume", "restore", "start"]
    node: str
    why: str


class NotNow(Exception):
    """No decision can be made now; the message says why and whether waiting helps."""


def decide(tenant_id: str, memory_limit: int, reports: dict) -> Decision:
    """reports: node name -> NodeReport, or the exception asking it ended with."""
    answered = {name: r for name, r in reports.items() if isinstance(r, NodeReport)}
    silent = sorted(set(reports) - set(answered))
    serving = {name: r.session(tenant_id) for name, r in answered.items() if r.session(tenant_id)}
    for name, s in sorted(serving.items()):
        if s.here in LIVE:
            return Decision("attach" if s.here == "running" else "resume", name, f"{s.here} on {name}")
    holders = {s.lease for s in serving.values() if s.lease}
    for holder in sorted(holders):
        if holder in answered:
            held = serving.get(holder)
            if held is None or held.state in CHANGING:
                what = held.state if held else "its report does not list the tenant"
                raise NotNow(f"{tenant_id}: {holder} holds its volume ({what}); try again in a moment")
            # Open there without a live session (it exited, or the volume was opened by hand): that
            # node alone may bring it back (tos-session start restores a hibernated one itself).
            return Decision("restore" if held.state == "checkpointed" else "start", holder,
                            f"its volume is open on {holder} without a live session ({held.state})")
        raise NotNow(f"{tenant_id}: its volume is leased by {holder}, which does not answer; an operator checks "
                     f"{holder} and, only if it is gone, restores the session elsewhere with --take-over")
    if not serving:
        raise NotNow(f"{tenant_id}: no answering node serves this tenant"
                     + (f" ({', '.join(silent)} did not answer)" if silent else ""))
    hibernated = any(s.state == "hibernated" for s in serving.values())
    why_not = {}
    candidates = []
    for name in serving:
        report = answered[name]
        if report.drained:
            why_not[name] = "drained"
        elif report.memory.available_bytes < memory_limit:
            why_not[name] = (f"{report.memory.available_bytes // 2**20} MiB available, "
                             f"the session may use {memory_limit // 2**20} MiB")
        else:
            candidates.append((-(report.memory.available_bytes - memory_limit), report.live_sessions, name))
    if not candidates:
        reasons = "; ".join(f"{n}: {w}" for n, w in sorted(why_not.items()))
        raise NotNow(f"{tenant_id}: no node can take the session now ({reasons}"
                     + (f"; {', '.join(silent)} did not answer" if silent else "") + ")")
    _, sessions, name = min(candidates)
    free = (answered[name].memory.available_bytes - memory_limit) // 2**20
    return Decision("restore" if hibernated else "start", name,
                    f"{'hibernated' if hibernated else 'stopped'}; {name} keeps {free} MiB free "
                    f"with {sessions} other session(s)")
