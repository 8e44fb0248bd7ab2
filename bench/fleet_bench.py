"""make bench-fleet: what a deploy costs as the fleet grows (issue 14 item 10).

Boots the lab twice in one run, with 2 and then 6 nodes (1 GB each, beside the storage host),
and records for a first and a no-op deploy: the wall time, and per host the commands pyinfra
ran there (facts and operations) and the files it moved (bench/remote_calls.py counts them at
pyinfra's ssh connector). Target: a no-op deploy runs no more commands per host with 6 nodes
than with 2 (per-host work must not grow with the fleet).
It destroys the current lab first, and leaves none running.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import ROOT, report

FLEETS = (2, 6)
NODE_MEMORY_MB = 1024


def lab(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "toskit.lab", *args], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def deploy() -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as counts:
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "bench.remote_calls", counts.name, "-y", "inventories/lab.py",
                        "deploy.py"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        seconds = round(time.monotonic() - started, 1)
        return {"seconds": seconds, "calls": json.loads(Path(counts.name).read_text())}


def per_group(calls: dict) -> dict:
    """Commands per host by group: the most and fewest any node ran, and the storage host's."""
    nodes = [v["commands"] for name, v in calls.items() if name.startswith("node")]
    return {"node_max": max(nodes), "node_min": min(nodes), "storage": calls.get("storage", {}).get("commands", 0)}


def fleet(nodes: int) -> dict:
    os.environ.update(TOS_LAB_NODES=str(nodes), TOS_LAB_NODE_MEMORY_MB=str(NODE_MEMORY_MB))  # for the lab
    lab("destroy")
    try:
        started = time.monotonic()
        lab("up")
        result = {"nodes": nodes, "lab_up_s": round(time.monotonic() - started, 1)}
        for phase in ("first", "noop"):
            measured = deploy()
            result[f"{phase}_deploy_s"] = measured["seconds"]
            result[f"{phase}_calls"] = measured["calls"]
            result[f"{phase}_commands_per_host"] = per_group(measured["calls"])
        return result
    finally:
        lab("destroy")


def main() -> int:
    result = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "node_memory_mb": NODE_MEMORY_MB,
              "fleets": [fleet(n) for n in FLEETS]}
    small, large = (f["noop_commands_per_host"] for f in result["fleets"])
    result["targets"] = {
        "noop_commands_per_node_do_not_grow": large["node_max"] <= small["node_max"],
        "noop_commands_on_storage_do_not_grow": large["storage"] <= small["storage"],
    }
    return report("fleet", result)


if __name__ == "__main__":
    sys.exit(main())
