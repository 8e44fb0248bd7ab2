"""tos-session hibernate, run again after one was killed mid-checkpoint, waits for the request the
killed one left running in dockerd; here: that such a request (runc checkpoint of the container) is
seen, and only for its own container. (The whole kill-and-rerun is proved on the lab, test_4.)"""

import subprocess
import sys
import time
from pathlib import Path

from toskit.node.tosnode.hibernation import _runc_checkpointing

CONTAINER = "ab" * 32


def test_a_running_runc_checkpoint_of_the_container_is_seen_and_no_other():
    # A process that looks like containerd's `runc ... checkpoint ... <id>` (Python under that argv).
    proc = subprocess.Popen(["/usr/sbin/runc", "-c", "import time; time.sleep(60)", "checkpoint",
                             "--leave-running", CONTAINER], executable=sys.executable)
    try:
        deadline = time.monotonic() + 10
        while b"checkpoint" not in Path(f"/proc/{proc.pid}/cmdline").read_bytes():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert _runc_checkpointing(CONTAINER)
        assert not _runc_checkpointing("cd" * 32)  # another container's
    finally:
        proc.kill()
        proc.wait()
    assert not _runc_checkpointing(CONTAINER)
