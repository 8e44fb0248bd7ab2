"""The idle policy, run by tos-session-policy.timer: a session without a client is paused at once
and hibernated once it has been without one for its tenant's `hibernate_after`; a client that
connects to a paused session wakes it. When each session lost its last client is kept in
/run/tos/idle (RAM: a reboot ends every session anyway).
"""

import json
import time
from pathlib import Path

from . import freezer, hibernation, locks
from .errors import NodeError

IDLE_DIR = Path("/run/tos/idle")


def _idle_since(tenant_id: str) -> float | None:
    try:
        return json.loads((IDLE_DIR / tenant_id).read_text())["since"]
    except (FileNotFoundError, ValueError, KeyError):
        return None


def _mark_idle(tenant_id: str, since: float | None) -> None:
    path = IDLE_DIR / tenant_id
    if since is None:
        path.unlink(missing_ok=True)
    else:
        IDLE_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.write_text(json.dumps({"since": since}) + "\n")


def step(tenants_file: dict, t: dict, now: float) -> str | None:
    """One session's policy decision; returns what it did, or None."""
    tenant_id = t["id"]
    state = freezer.state(tenant_id)
    if state not in ("running", "paused"):
        _mark_idle(tenant_id, None)
        return None
    if hibernation.clients(tenant_id):
        _mark_idle(tenant_id, None)
        return hibernation.resume(tenants_file, tenant_id) + " (a client connected)" if state == "paused" else None
    since = _idle_since(tenant_id)
    if since is None:
        _mark_idle(tenant_id, now)
        return hibernation.pause(tenants_file, tenant_id) + " (no client)" if state == "running" else None
    if now - since < t["hibernate_after"]:
        if state == "running":  # resumed by hand, still without a client
            return hibernation.pause(tenants_file, tenant_id) + " (no client)"
        return None
    result = hibernation.hibernate(tenants_file, tenant_id)
    _mark_idle(tenant_id, None)
    return result + f" (no client for {int(now - since)} s)"


def run(tenants_file: dict) -> tuple[list, list]:
    """Applies the policy to every session on this node: (what was done, what failed)."""
    done, failed = [], []
    for t in tenants_file["tenants"]:
        try:
            with locks.tenant_lock(t["id"], "policy", wait=0):
                result = step(tenants_file, t, time.time())
        except locks.Busy:
            continue  # another command is acting on this session: the next round looks again
        except NodeError as e:
            failed.append(hibernation.log(f"policy: {e}"))
        else:
            if result:
                done.append(hibernation.log(f"policy: {result}"))
    return done, failed
