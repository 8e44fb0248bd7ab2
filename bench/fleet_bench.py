"""make bench-fleet: what a deploy costs as the fleet grows (issue 14 item 10).

Boots the lab twice in one run, with 2 and then 6 nodes (1 GB each, beside the storage host),
and records for a first and a no-op deploy: the wall time, and per host the remote sessions the
deploy opened (ssh exec channels and SFTP transfers, counted from each host's own sshd log, so
nothing about pyinfra's internals is assumed). Target: a no-op deploy opens no more sessions per
host with 6 nodes than with 2 (per-host work must not grow with the fleet).
It destroys the current lab first, and leaves none running.
"""

import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench import ROOT, on, report
from toskit.lab.config import LabConfig

FLEETS = (2, 6)
NODE_MEMORY_MB = 1024
# sshd's VERBOSE line for each session a client opens: "command", or "subsystem 'sftp'".
SESSION = re.compile(r"Starting session: (command|subsystem 'sftp')")


def lab(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "toskit.lab", *args], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def cursors(config: LabConfig) -> dict:
    """Each host's journal position now: what the deploy logs comes after it."""
    found = {}
    for host in config.hosts:
        line = on(config, host.name, "journalctl -n 0 --show-cursor").strip().splitlines()[-1]
        found[host.name] = line.split("cursor: ", 1)[1]
    return found


def sessions_since(config: LabConfig, since: dict) -> dict:
    counted = {}
    for host in config.hosts:
        log = on(config, host.name, f"journalctl -o cat --after-cursor '{since[host.name]}'")
        kinds = Counter(match[1] for match in SESSION.finditer(log))
        counted[host.name] = {"commands": kinds["command"], "sftp": kinds["subsystem 'sftp'"]}
    return counted


def deploy(config: LabConfig) -> dict:
    since = cursors(config)
    started = time.monotonic()
    subprocess.run([str(Path(sys.executable).parent / "pyinfra"), "-y", "inventories/lab.py", "deploy.py"],
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    seconds = round(time.monotonic() - started, 1)
    return {"seconds": seconds, "sessions": sessions_since(config, since)}


def per_group(sessions: dict) -> dict:
    """Sessions per host, by group: the most any node saw, and the storage host's."""
    nodes = [v["commands"] + v["sftp"] for name, v in sessions.items() if name.startswith("node")]
    storage = [v["commands"] + v["sftp"] for name, v in sessions.items() if name.startswith("storage")]
    return {"node_max": max(nodes), "node_min": min(nodes), "storage": max(storage, default=0)}


def fleet(nodes: int) -> dict:
    # Read by the lab, and by LabConfig here (the hosts to count on).
    os.environ.update(TOS_LAB_NODES=str(nodes), TOS_LAB_NODE_MEMORY_MB=str(NODE_MEMORY_MB))
    config = LabConfig.from_env()
    lab("destroy")
    started = time.monotonic()
    lab("up")
    result = {"nodes": nodes, "lab_up_s": round(time.monotonic() - started, 1)}
    for phase in ("first", "noop"):
        measured = deploy(config)
        result[f"{phase}_deploy_s"] = measured["seconds"]
        result[f"{phase}_sessions"] = measured["sessions"]
        result[f"{phase}_sessions_per_host"] = per_group(measured["sessions"])
    lab("destroy")
    return result


def main() -> int:
    result = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "node_memory_mb": NODE_MEMORY_MB,
              "fleets": [fleet(n) for n in FLEETS]}
    small, large = (f["noop_sessions_per_host"] for f in result["fleets"])
    result["targets"] = {
        "noop_sessions_per_node_do_not_grow": large["node_max"] <= small["node_max"],
        "noop_sessions_on_storage_do_not_grow": large["storage"] <= small["storage"],
    }
    return report("fleet", result)


if __name__ == "__main__":
    sys.exit(main())
