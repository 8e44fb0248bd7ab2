"""make bench-lab: how long the lab takes, phase by phase, written to bench/results/.

Measures one run of each phase (they take minutes; repeat the bench to see the spread):
cold image build (package cache warm), boot-to-ssh per host, first deploy, no-op re-deploy,
and warm `lab up` (image cached, hosts' disks kept, every guest booted again).
Targets (issue 2): warm `lab up` of 3 hosts <= 120 s; no-op re-deploy <= 1/3 of the first deploy.
It destroys the current lab's state first, and leaves a freshly deployed lab running.
"""

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import ROOT, report
from toskit.lab.aptcache import AptCache
from toskit.lab.config import LabConfig
from toskit.lab.image import HostImage



def timed(argv: list) -> float:
    started = time.monotonic()
    subprocess.run(argv, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return round(time.monotonic() - started, 1)


def lab(*args: str) -> float:
    return timed([sys.executable, "-m", "toskit.lab", *args])


def deploy() -> float:
    return timed([str(Path(sys.executable).parent / "pyinfra"), "-y", "inventories/lab.py", "deploy.py"])


def cold_image_build(config: LabConfig) -> float:
    config.run_dir.mkdir(parents=True, exist_ok=True)
    AptCache(config).start()
    with tempfile.TemporaryDirectory(dir=config.cache_dir) as tmp:
        return round(HostImage(config, images_dir=Path(tmp)).ensure(log=lambda _: None), 1)


def main() -> int:
    config = LabConfig.from_env()
    lab("destroy")
    result = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "hosts": len(config.hosts),
              "cold_image_build_s": cold_image_build(config)}
    result["fresh_lab_up_s"] = lab("up")
    result["boot_to_ssh_s"] = json.loads((config.run_dir / "last-up.json").read_text())["boot_to_ssh_s"]
    result["accel"] = json.loads((config.run_dir / "last-up.json").read_text())["accel"]
    result["first_deploy_s"] = deploy()
    result["noop_redeploy_s"] = deploy()
    lab("down")
    result["warm_lab_up_s"] = lab("up")
    result["targets"] = {
        "warm_lab_up_le_120s": result["warm_lab_up_s"] <= 120,
        "noop_le_third_of_first": result["noop_redeploy_s"] <= result["first_deploy_s"] / 3,
    }
    return report("lab", result)


if __name__ == "__main__":
    sys.exit(main())
