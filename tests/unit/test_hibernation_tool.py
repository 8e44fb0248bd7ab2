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


def test_unfinished_images_are_told_apart_and_their_last_write_is_known(tmp_path):
    import os

    from toskit.node.tosnode.hibernation import _discard_unfinished, _last_write, _unfinished
    assert _last_write(tmp_path) == 0.0
    done, unfinished, failed = (tmp_path / n for n in ("hib-1", "hib-2", "failed-hib-0"))
    for folder in (done, unfinished, failed):
        folder.mkdir()
        (folder / "pages-1.img").write_bytes(b"x")
        os.utime(folder / "pages-1.img", (1000, 1000))
        os.utime(folder, (1000, 1000))
    (tmp_path / "hib-1.manifest.json").write_text("{}")
    os.utime(unfinished / "pages-1.img", (2000, 2000))  # still being written
    assert _unfinished(tmp_path) == [unfinished] and _last_write(tmp_path) == 2000
    _discard_unfinished(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["failed-hib-0", "hib-1", "hib-1.manifest.json"]
