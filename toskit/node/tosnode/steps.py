"""Where a hibernation or a restore spends its time: each step's wall time, and criu's own share of
the runtime's step read from criu's log, for the change's log line and `make bench-hibernation`."""

import json
import re
import time
from contextlib import contextmanager
from pathlib import Path

DUMP_FINISHED = b"Dumping finished successfully"
RESTORE_FINISHED = b"Restore finished successfully"
STEPS_PREFIX = "steps "
# A hibernation's checkpoint proper: from criu's start until its images are on storage (before the read-back).
CHECKPOINT_STEPS = ("checkpoint", "criu dump", "runc", "flush")


class Steps:
    """Seconds per named step of one change, in the order the steps ran."""

    def __init__(self, change: str, tenant_id: str):
        self.change, self.tenant_id = change, tenant_id
        self.seconds: dict[str, float] = {}

    @contextmanager
    def step(self, name: str):
        started = time.monotonic()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.monotonic() - started, 3)

    def split(self, name: str, part: str, part_seconds: float | None, rest: str) -> None:
        """Step `name` as `part` (measured inside it, e.g. criu by its own clock) and `rest`."""
        if part_seconds is None or name not in self.seconds:
            return
        whole = self.seconds.pop(name)
        self.seconds[part] = round(min(part_seconds, whole), 3)
        self.seconds[rest] = round(max(whole - part_seconds, 0.0), 3)

    def line(self) -> str:
        """`TENANT: CHANGE steps {"step": seconds, ...}`: the JSON is for the benchmark."""
        return f"{self.tenant_id}: {self.change} {STEPS_PREFIX}{json.dumps(self.seconds)}"


def parse_line(output: str, change: str) -> dict:
    """The steps of `change` from a tos-session output (the benchmark's side of Steps.line)."""
    marker = f" {change} {STEPS_PREFIX}"
    for line in output.splitlines():
        if marker in line:
            return json.loads(line.split(marker, 1)[1])
    raise ValueError(f"no '{change} steps' line in: {output[-500:]}")


class CriuLog:
    """criu's log file (runc.conf's log-file), watched across one runtime call. criu truncates it at
    every start, so it holds the last run's log; written since the call began, it is that call's
    (or, rarely, a later criu's, e.g. another tenant's: timing only, nothing depends on it)."""

    def __init__(self, path: Path):
        self.path = path
        self.since = time.time()

    def seconds(self, finished: bytes) -> float | None:
        """criu's own duration, from the stamp of its `finished` line; None when the log was not
        written since or holds no run that got that far."""
        try:
            if self.path.stat().st_mtime < self.since - 1:  # mtime's granularity
                return None
            text = self.path.read_bytes()
        except OSError:
            return None
        return criu_seconds(text, finished)


def criu_seconds(log: bytes, finished: bytes) -> float | None:
    """criu's own duration from its log: the stamp of its last `finished` line (criu stamps each
    line, at runc's log level, with the seconds since it started: "(12.345678) ")."""
    stamps = re.findall(rb"^\((\d+\.\d+)\) " + re.escape(finished), log, re.M)
    return float(stamps[-1]) if stamps else None
