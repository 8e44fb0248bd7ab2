"""Helpers of the lab tests: drive the lab, the deploy and the audits as a user would, from this machine.

The lab test files run in name order against one real lab: test_1 boots and deploys it, the
later ones build on that state, test_9 reboots a node and shuts the lab down. `.ci/run` installs what they need.
"""

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from toskit.cycle import AUDIT_WORKERS
from toskit.lab.config import LabConfig
from toskit.lab.criu_race import restore_outcome
from toskit.lab.vm import ssh_argv

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = re.compile(r"^lab: hosts=(\d+) changed=(\d+) audit_passed=(\d+) audit_failed=(\d+)$", re.M)
CONFIG = LabConfig.from_env()
PYINFRA = str(Path(sys.executable).with_name("pyinfra"))
# The second stage's two groups (conftest.py): each module's `pytestmark`.
ON_NODE1 = [pytest.mark.concurrent, pytest.mark.xdist_group("node1")]
ON_NODE2_AND_GATEWAY = [pytest.mark.concurrent, pytest.mark.xdist_group("node2+gateway")]


def run(argv: list, timeout: float, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env=env)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def lab(*args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "toskit.lab", *args], timeout, check)


# What a command that outlived its timeout was waiting on: the host's last log lines (ssh logins
# left out), the frozen cgroups, then every process with its kernel wait channel, and the kernel
# stacks of those in uninterruptible sleep. Last, as a long report keeps its end.
HANG_SNAPSHOT = ("echo '== journal'; journalctl -n 300 --no-pager -o short-monotonic | "
                 "grep -v -e audit -e sshd-session -e pam_unix | tail -n 60; "
                 "echo '== dmesg'; dmesg | grep -v audit | tail -n 20; "
                 "echo '== frozen cgroups'; grep -rlx 1 /sys/fs/cgroup --include cgroup.freeze; "
                 "echo '== processes'; ps -eo pid,ppid,stat,wchan:28,etimes,args --forest | grep -v ' \\[' ; "
                 "for p in $(ps -eo pid=,stat= | awk '$2 ~ /^D/ {print $1}'); do "
                 "echo \"== /proc/$p/stack ($(tr '\\0' ' ' < /proc/$p/cmdline))\"; cat /proc/$p/stack; done")


def on(host: str, command: str, check: bool = True, stdin: str | None = None,
       timeout: float = 300, explain_timeout: bool = True) -> subprocess.CompletedProcess:
    """The command's result; one that outlives `timeout` fails the test with what the host was
    doing then (explain_timeout=False: TimeoutExpired, for a caller that expects it)."""
    # On a slow machine (guests ~4x slower) one hibernate or restore took up to ~160 s.
    try:
        proc = subprocess.run(ssh_argv(CONFIG, CONFIG.host(host), command), capture_output=True, text=True,
                              timeout=timeout, input=stdin if stdin is not None else "")
    except subprocess.TimeoutExpired as e:
        if not explain_timeout:
            raise
        pytest.fail(f"on {host}: {command} still ran after {timeout:.0f} s; what {host} was doing then:\n"
                    f"{hang_snapshot(host)}\n(partial output: {e.stdout!r} {e.stderr!r})")
    if check and proc.returncode != 0:
        pytest.fail(f"on {host}: {command} exited {proc.returncode}: {proc.stderr}")
    return proc


def hang_snapshot(host: str) -> str:
    try:
        proc = subprocess.run(ssh_argv(CONFIG, CONFIG.host(host), HANG_SNAPSHOT), capture_output=True, text=True,
                              timeout=120, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return "(no snapshot: the host did not answer within 120 s)"
    return proc.stdout[-20000:] + proc.stderr[-2000:]


def cycle(audit_filter: str | None = None, timeout: float = 3000, limit: str | None = None) -> tuple:
    """`make lab`'s deploy + audit; returns (hosts, changed, passed, failed) from the summary line.

    The full audit (sessions, attacks, stress) takes minutes under TCG: later cycles pass a filter,
    and those about one host a limit (every host's facts cost seconds of emulated CPU).
    """
    filters = (["--audit-filter", audit_filter] if audit_filter else []) + (["--limit", limit] if limit else [])
    proc = run([sys.executable, "-m", "toskit.cycle", "--inventory", "inventories/lab.py", *filters], timeout,
               check=False)
    found = SUMMARY.findall(proc.stdout)
    assert found, f"no summary line in:\n{proc.stdout[-3000:]}"
    return tuple(int(x) for x in found[-1]), proc


def lab_processes() -> list:
    """Live (non-zombie) processes that belong to this lab: qemu, OpenBao, the package cache."""
    markers = (str(CONFIG.state_dir), str(CONFIG.cache_dir / "apt-cacher-ng"))
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            status = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if status != "Z" and any(m in cmdline for m in markers):
            found.append(cmdline)
    return found


def audit_only(expression: str) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *AUDIT_WORKERS, "tests/audit",
                "--inventory=inventories/lab.py", "-k", expression], 900, check=False)


def session_write(host: str, tenant: str, path: str, text: str) -> None:
    on(host, f"docker exec -i --user session tos-session-{tenant} sh -c 'cat > {path} && sync' && sync", stdin=text)


def session_read(host: str, tenant: str, path: str) -> str:
    return on(host, f"docker exec --user session tos-session-{tenant} cat {path}").stdout


def app_state(host: str, tenant: str, app: str) -> dict:
    """An Active App's live state (tos-app): pid, counter, log offset, blob sha256 hashed now."""
    return json.loads(on(host, f"docker exec tos-session-{tenant} tos-session-ctl app {app}").stdout)


# An Active App's memory: random bytes whose sha256 shows them intact after a restore. Small,
# as CRIU moves ~1 MB/s under TCG and every MiB is paid on each checkpoint and restore.
APP_BLOB_MB = 4


def launch_app(host: str, tenant: str, app: str, blob_mb: int = APP_BLOB_MB) -> dict:
    """Starts an Active App through the session agent (a child of the session's init, as a
    checkpoint needs it), and waits until it answers."""
    on(host, f"docker exec tos-session-{tenant} tos-session-ctl launch {app} {blob_mb}")
    wait_for_app(host, tenant, app)
    return app_state(host, tenant, app)


def wait_for_app(host: str, tenant: str, app: str, within: int = 120) -> None:
    """Until the app's socket is up in the session's /tmp, seen through /proc/PID/root (a `docker
    exec` per look costs seconds under emulation)."""
    on(host, f"pid=$(docker inspect -f '{{{{.State.Pid}}}}' tos-session-{tenant}) && "
             f"for i in $(seq {within * 5}); do test -S /proc/$pid/root/tmp/app-{app}.sock && exit 0; sleep 0.2; done; "
             f"exit 1")


def restore_live(host: str, tenant: str, command: str = "restore") -> str:
    """`tos-session restore` (or `start`) must bring the session back from its checkpoint on the
    first attempt: a cold start fails the test, and so does a restore that needed the retry."""
    out = on(host, f"tos-session {command} {tenant}").stdout
    assert restore_outcome(out) == "live", out
    return out


def memory_held(host: str, tenant: str) -> tuple:
    """(bytes charged to the tenant's slice, bytes of shared memory on the host: tmpfs files, the
    RAM a tool could leave behind), after dropping clean caches. Not the host's MemAvailable:
    dockerd's and containerd's Go heaps move it by tens of MB (seen on the lab: 19 MB less in
    the two minutes after one hibernation, and +31 MB right after another)."""
    out = on(host, "sync; echo 3 > /proc/sys/vm/drop_caches; "
                   f"cat /sys/fs/cgroup/tos.slice/tos-tenant.slice/tos-tenant-{tenant}.slice/memory.current; "
                   "grep ^Shmem: /proc/meminfo").stdout.split()
    return int(out[0]), int(out[2]) * 1024


def assert_freed(host: str, tenant: str, shared_before: int) -> None:
    """The tenant holds nothing on the host any more, and no RAM was left behind for it."""
    held, shared = memory_held(host, tenant)
    assert held < 2**20 and shared < shared_before + 4 * 2**20, (held, shared, shared_before)


def found_on_disk(host: str, needles: list) -> set:
    """Needles present anywhere in the bytes the guest has written to its disk (its qcow2
    overlay, read on this machine; the base image predates the lab). The guest syncs first."""
    on(host, "sync")
    overlay = CONFIG.state_dir / "vms" / host / "disk.qcow2"
    found, tail, longest = set(), b"", max(len(n) for n in needles)
    with open(overlay, "rb") as f:
        while chunk := f.read(64 * 2**20):
            window = tail + chunk
            found |= {n for n in needles if n in window}
            tail = window[-longest:]
    return found


def boot_id(host: str) -> str | None:
    """None while the guest does not answer (going down, booting)."""
    try:
        proc = on(host, "cat /proc/sys/kernel/random/boot_id", check=False, timeout=30, explain_timeout=False)
    except subprocess.TimeoutExpired:
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def reboot(host: str, timeout: float = 1200) -> None:
    """Reboots the guest from inside (qemu keeps running) and waits until it answers with a new
    boot and Docker is up (~25 s after sshd under TCG)."""
    before = boot_id(host)
    on(host, "systemd-run --on-active=1 systemctl reboot")  # returns before the connection drops
    deadline = time.monotonic() + timeout
    while boot_id(host) in (None, before):
        assert time.monotonic() < deadline, f"{host} did not come back within {timeout} s"
        time.sleep(5)
    on(host, "timeout 600 sh -c 'until systemctl -q is-active docker.service; do sleep 1; done'", timeout=660)


def active_since(host: str, unit: str) -> int:
    out = on(host, f"systemctl show -P ActiveEnterTimestampMonotonic {unit}").stdout.strip()
    assert out not in ("", "0"), f"{unit} is not active on {host}"
    return int(out)
