"""Holding a session's processes still.

pause freezes the session's cgroup: the kernel stops every task in milliseconds, where
`docker pause` costs half a second of process start-ups under emulation. Then Docker is told
(`hand_to_docker`): a container Docker knows to be paused gets no health probe and no `docker exec`,
so nothing new enters the session while it is paused or checkpointed (criu cannot dump a process
that is not a child of the session's init, and waits on it). runc pauses only a container whose own
cgroup it sees thawed, so for that moment the freeze is held by the tenant's slice above it.

For a checkpoint the tasks are also stopped (SIGSTOP, `hold_for_checkpoint`): stopped tasks stay
stopped through the dump and until the container is removed (or, on restore, until SIGCONT).
"""

import os
import signal
import time
from contextlib import contextmanager
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


def _frozen(cgroup: Path) -> bool:
    return (cgroup / "cgroup.freeze").read_text().strip() == "1"


def state(tenant_id: str, found: dict | None = None) -> str | None:
    """Docker's state of the session's container (`found`: its inspection, if the caller has it),
    except that a frozen one is 'paused' (frozen by tos-session and not yet handed to Docker, or by
    its slice in a hand-over cut short)."""
    found = found or sessions.container(tenant_id)
    if found is None:
        return None
    current = found["State"]["Status"]
    if current != "running":  # exited or created (after a reboot): Pid 0, no cgroup to read
        return current
    cgroup = cgroup_of(tenant_id, found["State"]["Pid"])
    return "paused" if _frozen(cgroup) or _frozen(cgroup.parent) else current


@contextmanager
def _uninterrupted():
    """Termination signals wait until a sequence of cgroup writes is complete (SIGKILL cannot:
    `thaw` undoes whatever such a cut leaves)."""
    blocked = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def freeze(tenant_id: str) -> float:
    """Freezes the session, then hands the pause to Docker; returns the seconds until the kernel
    reported the session frozen."""
    cgroup = cgroup_of(tenant_id)
    took = _freeze(cgroup, tenant_id)
    hand_to_docker(tenant_id, cgroup)
    return took


def _freeze(cgroup: Path, tenant_id: str, undo_on_timeout: bool = True) -> float:
    started = time.monotonic()
    (cgroup / "cgroup.freeze").write_text("1")
    while "frozen 1" not in (cgroup / "cgroup.events").read_text().split("\n"):
        if time.monotonic() - started > FREEZE_TIMEOUT:
            if undo_on_timeout:
                (cgroup / "cgroup.freeze").write_text("0")
            raise NodeError(f"{tenant_id}: {cgroup.name} did not freeze within {FREEZE_TIMEOUT} s"
                            + ("; left running" if undo_on_timeout else "; the freeze stays asked for"))
        time.sleep(0.001)
    return time.monotonic() - started


def hand_to_docker(tenant_id: str, cgroup: Path) -> None:
    """The frozen session becomes a container Docker paused, with no task running in between: the
    tenant's slice holds the freeze while runc takes over the container's own. If dockerd refuses,
    the session stays frozen as it was, and the error says so."""
    slice_ = cgroup.parent
    if not slice_.name.startswith("tos-tenant-"):  # never freeze what dockerd itself runs in
        raise NodeError(f"{tenant_id}: the session's cgroup {cgroup} is not in a tenant slice")
    with _uninterrupted():
        _freeze(slice_, tenant_id)
        try:
            (cgroup / "cgroup.freeze").write_text("0")
            try:
                dockerapi.call("POST", f"/containers/{sessions.container_name(tenant_id)}/pause")
            except NodeError as e:
                (cgroup / "cgroup.freeze").write_text("1")
                raise NodeError(f"{tenant_id}: paused, but dockerd did not take the pause ({e}); Docker still "
                                f"probes it; `tos-session pause {tenant_id}` tries again") from None
        finally:
            (slice_ / "cgroup.freeze").write_text("0")


def thaw(tenant_id: str) -> None:
    """Undoes a freeze (the session's or its slice's), a SIGSTOP hold and a `docker pause`, whichever
    holds the session, also when a hold or a hand-over was cut short."""
    cgroup = cgroup_of(tenant_id)
    if sessions.state(tenant_id) == "paused":
        # Through Docker, or it would still say paused. runc resumes only a container whose own
        # cgroup it finds frozen: a cut-short hold (or criu, killed mid-dump) may have left it thawed.
        _freeze(cgroup, tenant_id, undo_on_timeout=False)
        dockerapi.call("POST", f"/containers/{sessions.container_name(tenant_id)}/unpause")
    (cgroup / "cgroup.freeze").write_text("0")
    (cgroup.parent / "cgroup.freeze").write_text("0")
    signal_all(cgroup, signal.SIGCONT)


def hold_for_checkpoint(tenant_id: str) -> Path:
    """From paused to stopped, Docker's pause kept throughout (so it starts nothing in the session):
    SIGSTOP, a thaw behind Docker's back until every task has stopped, frozen again. The checkpoint
    then finds the container paused, as containerd would have made it. Returns the cgroup, to undo
    it with `release`."""
    if sessions.state(tenant_id) != "paused":
        raise NodeError(f"{tenant_id}: the session is not paused in Docker; nothing to hold")
    cgroup = cgroup_of(tenant_id)
    with _uninterrupted():
        signal_all(cgroup, signal.SIGSTOP)
        (cgroup / "cgroup.freeze").write_text("0")
        try:
            _wait_stopped(cgroup, tenant_id)
        finally:
            _freeze(cgroup, tenant_id, undo_on_timeout=False)
    return cgroup


def _wait_stopped(cgroup: Path, tenant_id: str) -> None:
    deadline = time.monotonic() + FREEZE_TIMEOUT
    while running := [tid for tid in (cgroup / "cgroup.threads").read_text().split() if _task_state(tid) not in "TtZX"]:
        if time.monotonic() > deadline:
            signal_all(cgroup, signal.SIGCONT)
            raise NodeError(f"{tenant_id}: tasks {' '.join(running[:5])} did not stop within {FREEZE_TIMEOUT} s; "
                            f"the session stays paused")
        time.sleep(0.01)


def _task_state(tid: str) -> str:
    """The one-letter state of a thread (R, S, D, T, t, Z, X); X if it is gone."""
    try:
        return Path(f"/proc/{tid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return "X"


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


# What Docker's health probe of a session runs as (comm, 15 characters at most): runc's helper
# while it enters the container, then the probe script.
DOCKER_PROBE = ("runc:[0:PARENT]", "runc:[1:CHILD]", "runc:[2:INIT]", "tos-session-hea")


def strangers(cgroup: Path, init_pid: int) -> list:
    """(pid, command, probe) of the processes in the session's cgroup that are not its init's
    descendants: ones `docker exec` started. criu dumps only init's tree. `probe`: the process is
    (under) a health probe of Docker's, which Docker abandoned when it paused the session."""
    procs = {}
    for pid in (cgroup / "cgroup.procs").read_text().split():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        procs[int(pid)] = (int(stat.rsplit(")", 1)[1].split()[1]), stat[stat.index("(") + 1:stat.rindex(")")])
    found = []
    for pid, (_, command) in procs.items():
        line = [pid]  # the process, then its ancestors inside the cgroup
        while line[-1] in procs and line[-1] != init_pid:
            line.append(procs[line[-1]][0])
        if line[-1] != init_pid:  # line[-2]: what `docker exec` started
            found.append((pid, command, procs[line[-2]][1] in DOCKER_PROBE))
    return found
