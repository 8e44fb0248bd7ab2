"""One session-changing command per tenant at a time on this node.

The idle policy's timer, an operator and the gateway's broker can all act on the same session; two
of them interleaving (a restore while a stop closes the volume) would leave a half-made session.
Each command that changes a session or its volume holds the tenant's lock from before its first
check to its end: an flock(2) on /run/tos/locks/TENANT, released by the kernel when the holder
exits, even by SIGKILL, so a crash never leaves a stale lock. Across nodes the volume's lease
already keeps a session on one node at a time (volumes.py).
"""

import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path

from .errors import NodeError
from .files import now

LOCK_DIR = Path("/run/tos/locks")  # RAM: a reboot ends every session and every holder
WAIT = 600  # seconds a command waits for another on the same tenant (a restore took ~150 s under TCG)
POLL = 0.2


class Busy(NodeError):
    """Another command holds the tenant's lock: nothing was done; the same command can be run again."""


def holder(tenant_id: str) -> str:
    """Who holds (or last held) the tenant's lock, as its holder wrote it."""
    try:
        return (LOCK_DIR / tenant_id).read_text().strip() or "unknown"
    except FileNotFoundError:
        return "nobody"


@contextmanager
def tenant_lock(tenant_id: str, command: str, wait: float | None = None):
    """Holds TENANT's lock for the block; waits up to `wait` seconds (0: not at all; None: WAIT)."""
    LOCK_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(LOCK_DIR / tenant_id, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + (WAIT if wait is None else wait)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise Busy(f"{tenant_id}: another command is changing this session ({holder(tenant_id)}); "
                               f"nothing was done: run this again once it has finished") from None
                time.sleep(POLL)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}: tos-session {command} {tenant_id}, since {now()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
