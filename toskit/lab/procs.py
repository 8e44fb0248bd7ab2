"""Processes the lab starts: tracked by pid files, recognised by their command line, stopped on `down`."""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from .errors import LabError


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def running_pid(pidfile: Path, marker: str) -> int | None:
    """The pid in `pidfile` if that process is alive and its command line contains `marker`.

    The marker guards against a stale pid file naming a pid the kernel has since reused.
    """
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if marker in _cmdline(pid) else None


def start_daemon(argv: list, pidfile: Path, log: Path, **popen) -> int:
    """Starts argv detached from our session, logging to `log`, and records its pid."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True, **popen)
    pidfile.write_text(f"{proc.pid}\n")
    return proc.pid


def stop(pidfile: Path, marker: str, timeout: float = 15.0) -> bool:
    """Stops the process named by `pidfile` (TERM, then KILL after `timeout`). True if one was running."""
    pid = running_pid(pidfile, marker)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        if not wait_gone(pid, timeout):
            os.kill(pid, signal.SIGKILL)
            wait_gone(pid, 5)
    pidfile.unlink(missing_ok=True)
    return pid is not None


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            # Reap it if it is our child; otherwise just probe.
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        except ChildProcessError:
            pass
        if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
            return True
        time.sleep(0.2)
    return False


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_for_port(port: int, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(1)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise LabError(f"{what} did not start listening on 127.0.0.1:{port} within {timeout:.0f} s",
                   f"read its log: {log}")


def run(argv: list, what: str, fix: str, **kwargs) -> subprocess.CompletedProcess:
    """Runs a command to completion; on failure raises a LabError carrying its output."""
    proc = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise LabError(f"{what} failed (exit {proc.returncode}):\n{tail}", fix)
    return proc


class Daemon:
    """A background service of the lab: started with a pid file and a log, known by a marker in its argv."""

    def __init__(self, run_dir: Path, name: str, marker: str):
        self.pidfile = run_dir / f"{name}.pid"
        self.log = run_dir / f"{name}.log"
        self.name = name
        self.marker = marker

    def running(self) -> bool:
        return running_pid(self.pidfile, self.marker) is not None

    def launch(self, argv: list, port: int, timeout: float = 30) -> None:
        """Starts argv in the background and waits until it listens on 127.0.0.1:port."""
        start_daemon(argv, self.pidfile, self.log)
        wait_for_port(port, timeout, self.name, self.log)

    def stop(self) -> bool:
        return stop(self.pidfile, self.marker)
