"""Forces the losing order of criu's restore race on a lab node, for the tests and the bench.

criu's restored root task opens timens-0.img right after clone3, before its parent writes the
new user namespace's uid/gid maps (criu/cr-restore.c); which comes first is up to the scheduler.
This puts a wrapper first in the PATH runc finds criu in, which runs criu under strace holding
the parent in every clone/clone3 for a while before it returns, so the child always runs ahead.
strace -D keeps out of the process tree: criu and the restored task keep runc as their parent.
No child of criu is traced. Test harness only: `remove()` leaves the node as deployed, and the
wrapper acts only while its marker in /run exists, so a reboot switches it off too.
"""

import re

from roles import hibernation as hibernation_role

CRIU_LOG = hibernation_role.CRIU_LOG  # the node's criu log: one run's (criu truncates it)

WRAPPER = "/usr/local/sbin/criu"  # before /usr/sbin in the PATH containerd gives runc
MARKER = "/run/tos-lab-criu-race"  # present: the wrapper slows criu; holds 'purge' if strace was ours
CALLS = "/run/tos-lab-criu-wrapper.calls"
ROOT_TASK_LINE = re.compile(r"^\([0-9.]+\)\s+1: ")  # a line logged by the restored root task (pid 1)
PARENT_BACK_FROM_CLONE = re.compile(r"PID: real \d+ virt 1$")  # the parent, before it writes the maps


def install(delay_ms: int) -> str:
    """A shell command for the node (root): strace, and the wrapper holding criu's parent."""
    us = delay_ms * 1000
    return (f"if dpkg -s strace >/dev/null 2>&1; then : > {MARKER}; else "
            f"apt-get install -y -q -o DPkg::Lock::Timeout=120 --no-install-recommends strace >/dev/null "
            f"&& echo purge > {MARKER}; fi && rm -f {CALLS} && "
            f"cat > {WRAPPER}.new <<'EOF' && chmod 755 {WRAPPER}.new && mv {WRAPPER}.new {WRAPPER}\n"
            "#!/bin/sh\n"
            "# tos lab (toskit/lab/criu_race.py): criu's parent held in clone/clone3, its children run on\n"
            f"[ -e {MARKER} ] || exec /usr/sbin/criu \"$@\"\n"
            f"echo \"$$ $*\" >> {CALLS}\n"
            f"exec strace -D -qq -o /dev/null -e trace=clone,clone3 -e inject=clone:delay_exit={us} "
            f"-e inject=clone3:delay_exit={us} /usr/sbin/criu \"$@\"\n"
            "EOF")


def calls() -> str:
    """A shell command printing how many times criu ran through the wrapper."""
    return f"cat {CALLS} 2>/dev/null | wc -l"


def remove() -> str:
    return (f"rm -f {WRAPPER}; if grep -qs purge {MARKER}; then "
            f"apt-get purge -y -q -o DPkg::Lock::Timeout=120 strace >/dev/null; fi; rm -f {MARKER} {CALLS}")


def root_task_ran_ahead(criu_log: str) -> bool:
    """True if the restored root task logged (its first step opens timens-0.img) before its parent,
    back from clone3, logged the task's pid: the parent writes the uid/gid maps only after that."""
    lines = criu_log.splitlines()
    child = next((i for i, line in enumerate(lines) if ROOT_TASK_LINE.match(line)), None)
    parent = next((i for i, line in enumerate(lines) if PARENT_BACK_FROM_CLONE.search(line)), None)
    return child is not None and parent is not None and child < parent


def restore_outcome(tos_session_output: str) -> str:
    """What `tos-session restore | start` did: live (from the checkpoint, first attempt), retried
    (live, but only after a failed attempt), cold (the live state lost), or none (no checkpoint)."""
    if "COLD START" in tos_session_output:
        return "cold"
    if "restored from hib-" not in tos_session_output:
        return "none"
    return "retried" if "restore attempt" in tos_session_output else "live"
