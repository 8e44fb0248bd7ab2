"""Benchmarks: each writes one JSON result to bench/results/ and exits 1 if it missed a target."""

import json
import re
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DD_SECONDS = re.compile(r"copied, ([0-9.]+) s")  # in dd's summary line


def on(config, node: str, command: str) -> str:
    """Runs a command on a lab host as root; its output, or the bench stops naming what failed."""
    from toskit.lab.vm import ssh_argv
    proc = subprocess.run(ssh_argv(config, config.host(node), command), capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"bench: on {node}: {command}: {proc.stdout.strip()} {proc.stderr.strip()}")
    return proc.stdout + proc.stderr


def report(kind: str, result: dict) -> int:
    """Writes bench/results/<kind>-<time>.json, prints it; the exit code says if the targets held."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"written to {out.relative_to(ROOT)}")
    return 0 if all(result["targets"].values()) else 1
