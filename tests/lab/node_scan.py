"""Runs ON a lab node (python3, stdlib): reads hex-encoded needles from stdin and prints where
any of them appears: a process's argv or environment, or the journal. Used by test_3_storage."""

import subprocess
import sys
from pathlib import Path

needles = [bytes.fromhex(line) for line in sys.stdin.read().split()]
places = {}
for proc in Path("/proc").glob("[0-9]*"):
    for part in ("cmdline", "environ"):
        try:
            places[f"{proc.name}/{part}"] = (proc / part).read_bytes()
        except OSError:
            pass
places["journal"] = subprocess.run(["journalctl", "-o", "export", "--no-pager"], capture_output=True).stdout
for place, data in sorted(places.items()):
    for index, needle in enumerate(needles):
        if needle in data:
            print(f"needle{index}@{place}")
