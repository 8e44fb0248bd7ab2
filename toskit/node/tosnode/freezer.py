"""Holding a session's processes still.

pause writes the session's cgroup.freeze: the kernel stops every task in milliseconds, where
`docker pause` costs half a second of process start-ups under emulation. Docker does not see such
a freeze (it still says running), so `state` reads the cgroup too, and Docker's own operations
(checkpoint) are given a thawed container whose tasks are held by SIGSTOP instead: stopped tasks
stay stopped through the dump, through Docker's resume after it, until the container is removed,
so nothing runs between the checkpoint and the removal (or, on restore, until SIGCONT).
"""

import os
import signal
import time
from pathlib import Path

from . import dockerapi, sessions
from .errors import NodeError

FREEZE_TIMEOUT = 10


def container_pid(tenant_id: str) -> int:
    found = sessions.container(tenant_id)
    if found is None:
        raise NodeError(f"{tenant_id}: no session container on this node")
    return int(found["State"]["Pid"])


def cgroup_of(tenant_id: str, pid: int | None = None) -> Path:
    line = Path(f"/proc/{pid or container_pid(tenant_id)}/cgroup").read_text()
    return Path("/sys/fs/cgroup" + line.split(":", 2)[2].strip())


def state(tenant_id: str) -> str | None:
    """Docker's state of the session's container, except that a frozen one is 'paused'."""
    found = sessions.container(tenant_id)
    if found is None:
        return None
    current = found["State"]["Status"]
    if current == "running" and (cgroup_of(tenant_id, found["State"]["Pid"]) / "cgroup.freeze").read_text().strip() == "1":
        return "paused"
    return current


def freeze(tenant_id: str) -> float:
    """Freezes the session; returns the seconds until the kernel reported it frozen."""
    started = time.monotonic()
    cgroup = cgroup_of(tenant_id)
    (cgroup / "cgroup.freeze").write_text("1")
    while "frozen 1" not in (cgroup / "cgroup.events").read_text().split("\n"):
        if time.monotonic() - started > FREEZE_TIMEOUT:
            (cgroup / "cgroup.freeze").write_text("0")
            raise NodeError(f"{tenant_id}: the session did not freeze within {FREEZE_TIMEOUT} s; left running")
        time.sleep(0.001)
    return time.monotonic() - started


def thaw(tenant_id: str) -> None:
    """Undoes a freeze, a SIGSTOP hold and a `docker pause`, whichever holds the session."""
    _undo_docker_pause(tenant_id)
    cgroup = cgroup_of(tenant_id)
    (cgroup / "cgroup.freeze").write_text("0")
    signal_all(cgroup, signal.SIGCONT)


def hold_for_checkpoint(tenant_id: str) -> Path:
    """From frozen to stopped: SIGSTOP waits in the frozen tasks and takes effect as the cgroup
    thaws, before they run anything. Returns the cgroup, to undo it with `release`."""
    cgroup = cgroup_of(tenant_id)
    signal_all(cgroup, signal.SIGSTOP)
    _undo_docker_pause(tenant_id)
    (cgroup / "cgroup.freeze").write_text("0")
    return cgroup


def _undo_docker_pause(tenant_id: str) -> None:
    """A `docker pause` is undone through Docker: thawed behind its back, Docker would still say paused."""
    if sessions.state(tenant_id) == "paused":
        dockerapi.call("POST", f"/containers/{sessions.container_name(tenant_id)}/unpause")


def release(cgroup: Path) -> None:
    """Back to frozen (paused), the SIGSTOP hold undone for when the session is resumed."""
    (cgroup / "cgroup.freeze").write_text("1")
    signal_all(cgroup, signal.SIGCONT)


def signal_all(cgroup: Path, signum: int) -> None:
    for pid in (cgroup / "cgroup.procs").read_text().split():
        try:
            os.kill(int(pid), signum)
        except ProcessLookupError:
            pass
