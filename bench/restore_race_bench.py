"""make bench-restore-race: first restores of a hibernated session into fresh containers, over and
over, alternating between the lab's two nodes; every one must come back live on its first attempt.

This is the stress check for the restore race (issue 16): criu's restored root task opens
timens-0.img before its parent has written the new user namespace's uid/gid maps, so the image
ownership the restore hook leaves must serve the task both before and after the maps. To force
the losing order instead of waiting for it, RACE_SLOW_PARENT_MS holds criu's parent in
clone/clone3 that long (toskit/lab/criu_race.py: criu under strace), so the new root task always
runs ahead of the map write. RACE_HOOK_REF puts the restore hook of another git revision on both
nodes for the run (e.g. fa04840, the one before the fix), to see the race lost.

    RACE_CYCLES=8 make bench-restore-race                                   # as deployed
    RACE_SLOW_PARENT_MS=500 RACE_CYCLES=2 make bench-restore-race           # the fix, parent slowed
    RACE_SLOW_PARENT_MS=500 RACE_HOOK_REF=fa04840 make bench-restore-race   # the old hook, slowed

Every restore is a first restore (a new container on the other node); each cycle records its
outcome (live, retried, cold), time and criu's first errors. Needs a deployed lab; leaves the
nodes as deployed (hook, no wrapper, no strace) and the tenant stopped.
"""

import json
import os
import subprocess
import sys
import time

import jinja2

from bench import ROOT, on, report
from roles.hibernation import CRIU_HOOK as HOOK
from roles.runtime import DEFAULTS as RUNTIME_DEFAULTS
from toskit.lab import criu_race
from toskit.lab.config import LabConfig
from toskit.lab.vm import ssh_argv
from toskit.templating import JINJA_OPTIONS

NODES = ("node1", "node2")
TENANT = os.environ.get("BENCH_TENANT", "acme")
CYCLES = int(os.environ.get("RACE_CYCLES", "6"))
SLOW_PARENT_MS = int(os.environ.get("RACE_SLOW_PARENT_MS", "0"))
HOOK_REF = os.environ.get("RACE_HOOK_REF", "")
APP = "race"
SAVED_HOOK = "/run/tos-criu-hook.bench-saved"


def hook_of(ref: str) -> str:
    template = subprocess.run(["git", "show", f"{ref}:templates/hibernation/tos-criu-hook.j2"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout
    return jinja2.Environment(**JINJA_OPTIONS).from_string(template).render(
        host={"data": {"docker_subid_start": RUNTIME_DEFAULTS["docker_subid_start"]}})


def put_hook(config: LabConfig, node: str, text: str) -> None:
    subprocess.run(ssh_argv(config, config.host(node), f"cat > {HOOK}.new && chmod 755 {HOOK}.new && "
                                                        f"mv {HOOK}.new {HOOK}"),
                   input=text, text=True, check=True, capture_output=True)


def set_up(config: LabConfig) -> None:
    for node in NODES:
        on(config, node, f"tos-session stop {TENANT} >/dev/null 2>&1; [ -e {SAVED_HOOK} ] || cp -a {HOOK} {SAVED_HOOK}")
        if HOOK_REF:
            put_hook(config, node, hook_of(HOOK_REF))
        if SLOW_PARENT_MS:
            on(config, node, criu_race.install(SLOW_PARENT_MS))


def tear_down(config: LabConfig) -> None:
    for node in NODES:
        on(config, node, f"tos-session stop {TENANT} >/dev/null 2>&1; "
                         f"if [ -e {SAVED_HOOK} ]; then mv {SAVED_HOOK} {HOOK}; fi; {criu_race.remove()}")


def app_state(config: LabConfig, node: str) -> dict:
    on(config, node, f"for i in $(seq 120); do docker exec tos-session-{TENANT} test -S /tmp/app-{APP}.sock "
                     f"&& exit 0; sleep 0.5; done; exit 1")
    return json.loads(on(config, node, f"docker exec tos-session-{TENANT} tos-session-ctl app {APP}"))


def cycle(config: LabConfig, source: str, target: str) -> dict:
    before = app_state(config, source)
    on(config, source, f"tos-session hibernate {TENANT}")
    started = time.monotonic()
    out = on(config, target, f"tos-session restore {TENANT}")
    took = round(time.monotonic() - started, 1)
    criu_log = on(config, target, f"cat {criu_race.CRIU_LOG}")
    errors = [line for line in criu_log.splitlines() if "Error" in line][:3]
    after = app_state(config, target)
    same = (after["pid"], after["blob_sha256"]) == (before["pid"], before["blob_sha256"])
    outcome = criu_race.restore_outcome(out)
    if outcome == "live" and not same:
        outcome = "wrong-state"
    return {"from": source, "to": target, "outcome": outcome, "restore_s": took,
            "root_task_ran_ahead_of_the_maps": criu_race.root_task_ran_ahead(criu_log), "criu_errors": errors}


def main() -> int:
    config = LabConfig.from_env()
    try:
        set_up(config)
        on(config, NODES[0], f"tos-session start {TENANT} && docker exec tos-session-{TENANT} "
                             f"tos-session-ctl launch {APP} 4")
        cycles = [cycle(config, NODES[i % 2], NODES[(i + 1) % 2]) for i in range(CYCLES)]
        wrapped = sum(int(on(config, n, criu_race.calls()).strip()) for n in NODES) if SLOW_PARENT_MS else None
    finally:
        tear_down(config)
    outcomes = [c["outcome"] for c in cycles]
    result = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "tenant": TENANT, "cycles": CYCLES,
              "slow_parent_ms": SLOW_PARENT_MS, "criu_runs_through_the_slowing_wrapper": wrapped,
              "hook": HOOK_REF or "as deployed",
              "outcomes": {o: outcomes.count(o) for o in sorted(set(outcomes))}, "each": cycles,
              "runtime": on(config, NODES[0], "dpkg-query -W criu runc containerd docker.io; uname -r").split("\n"),
              "targets": {"every_restore_live_on_its_first_attempt": outcomes == ["live"] * CYCLES}}
    return report("restore-race", result)


if __name__ == "__main__":
    sys.exit(main())
