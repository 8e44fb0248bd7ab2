"""make bench-hibernation: where hibernate and restore spend their time, against what criu alone
costs for the same session and what the same encrypted volume reads and writes raw, all in one run.
One lab node, one tenant; sessions of several resident sizes.

For each size: dd writes and reads (caches dropped) a file of that size in the volume; a session
starts cold (timed); an Active App holding that much memory is launched through the agent; the
session is paused (the tool's own timing: the freeze, not ssh or Python start-up) and resumed.
Then the floor (bench/criu_floor.py): criu, driven by runc as containerd drives it but without
Docker's archive path, dumps the running session (--leave-running) into tmpfs and into the volume;
the images are copied from tmpfs into the volume and hashed in RAM. Then the session hibernates and
is restored, and each reports its steps (toskit/node/tosnode/steps.py), criu's own share read from
its log. Throughput = checkpoint image bytes / time.
Targets (issue 17): hibernate and restore each within 1.5 x criu alone; checkpoint >= 1/2 the
volume's raw write rate and restore >= 1/2 its raw read rate wherever criu alone reaches that;
pause < 0.2 s. A missed target names the step that holds it back, with its seconds.

The lab's tenants are limited to 256M of memory and volume, too small for the largest session: the
bench deploys the node with one more tenant, BENCH_TENANT (BENCH_MEMORY of memory, a 1G volume),
and deploys the lab's own data back at the end (the tenant's volume file stays on the share, its
key is left in Vault, its slice and network on the node). Needs a deployed lab.
"""

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import DD_SECONDS, ROOT, criu_floor, on, report
from toskit.lab.config import LabConfig
from toskit.node.tosnode.steps import parse_line

NODE = os.environ.get("BENCH_NODE", "node1")
TENANT = os.environ.get("BENCH_TENANT", "bench")
SIZES_MB = [int(s) for s in os.environ.get("BENCH_SIZES_MB", "64,256").split(",")]
MEMORY = os.environ.get("BENCH_MEMORY", "768M")
PAUSES = int(os.environ.get("BENCH_PAUSES", "5"))
PYINFRA = str(Path(sys.executable).with_name("pyinfra"))


def on_node(config: LabConfig, command: str) -> str:
    return on(config, NODE, command)


def deploy(inventory: str) -> None:
    proc = subprocess.run([PYINFRA, "-y", inventory, "deploy.py", "--limit", NODE], cwd=ROOT,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise SystemExit(f"bench: deploy of {inventory} failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")


def timed(config: LabConfig, command: str) -> float:
    started = time.monotonic()
    on_node(config, command)
    return time.monotonic() - started


def measure(config: LabConfig, size_mb: int) -> dict:
    volume = f"/run/tos/volumes/{TENANT}"
    session = f"tos-session-{TENANT}"
    on_node(config, f"tos-session volume open {TENANT}")
    write = float(DD_SECONDS.findall(on_node(
        config, f"dd if=/dev/urandom of={volume}/bench.tmp bs=1M count={size_mb} conv=fdatasync 2>&1"))[-1])
    read = float(DD_SECONDS.findall(on_node(
        config, f"sync; echo 3 > /proc/sys/vm/drop_caches; dd if={volume}/bench.tmp of=/dev/null bs=1M 2>&1"))[-1])
    on_node(config, f"rm -f {volume}/bench.tmp")

    # The agent relaunches the apps its path stack saved (a cold start): an earlier size's app would stay.
    on_node(config, f"rm -f {volume}/home/.tos/path.json && tos-session volume close {TENANT}")
    cold_start = timed(config, f"tos-session start {TENANT}")
    # Resident = anonymous memory of the tenant's slice: what a checkpoint has to write.
    anon = f"grep '^anon ' /sys/fs/cgroup$(systemctl show -P ControlGroup tos-tenant-{TENANT}.slice)/memory.stat"
    base_mb = int(on_node(config, anon).split()[1]) // 2**20  # the agent, its gate, the interpreter
    app_mb = max(size_mb - base_mb, 1)
    on_node(config, f"docker exec {session} tos-session-ctl launch bench {app_mb} && for i in $(seq 600); do "
                    f"docker exec {session} test -S /tmp/app-bench.sock && break; sleep 0.5; done")
    launched = json.loads(on_node(config, f"docker exec {session} tos-session-ctl app bench"))
    if launched.get("blob_mb") != app_mb:
        raise SystemExit(f"bench: the app did not come up with {app_mb} MB: {launched}")
    resident = int(on_node(config, anon).split()[1])
    pauses = []
    for _ in range(PAUSES):
        pauses.append(float(re.search(r"paused in ([0-9.]+) s", on_node(config, f"tos-session pause {TENANT}"))[1]))
        on_node(config, f"tos-session resume {TENANT}")
    alone = criu_floor.measure(lambda command: on_node(config, command), session, volume)
    hibernated = on_node(config, f"tos-session hibernate {TENANT}")
    image_mb = float(re.search(r"\(([0-9.]+) MiB of images", hibernated)[1])
    restored = on_node(config, f"tos-session restore {TENANT}")
    on_node(config, f"docker exec {session} tos-session-ctl app bench")  # the app answers: it came back
    on_node(config, f"tos-session stop {TENANT}")
    hibernate, restore = parse_line(hibernated, "hibernate"), parse_line(restored, "restore")
    return criu_floor.judge({
        "resident_mb": round(resident / 2**20, 1), "image_mb": image_mb,
        "volume_raw_mb_per_s": {"write": round(size_mb / write, 1), "read": round(size_mb / read, 1)},
        "pause_s_median": statistics.median(pauses), "pause_s": pauses, "cold_start_s": round(cold_start, 1),
        "criu_alone": alone, "hibernate_steps": hibernate, "restore_steps": restore,
    })


def main() -> int:
    config = LabConfig.from_env()
    with tempfile.TemporaryDirectory() as tmp:
        inventory = Path(tmp) / "lab.py"  # named like the lab's, so group_data/lab.py applies too
        inventory.write_text(
            f"exec(open({str(ROOT / 'inventories' / 'lab.py')!r}).read())\n"
            f"_lab = {{}}\nexec(open({str(ROOT / 'group_data' / 'lab.py')!r}).read(), _lab)\n"
            f"_tenants = _lab['tenants'] + [{{'id': {TENANT!r}, 'quotas': {{'cpu': 1, 'memory': {MEMORY!r}, "
            f"'pids': 256, 'volume_size': '1G'}}}}]\n"
            f"nodes = [(name, {{**data, 'tenants': _tenants}}) for name, data in nodes]\n")
        deploy(str(inventory))
        try:
            on_node(config, f"tos-session stop {TENANT}")
            sizes = {str(size): measure(config, size) for size in SIZES_MB}
        finally:
            deploy("inventories/lab.py")
    result = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "node": NODE, "tenant": TENANT,
              "tenant_memory": MEMORY, "sizes_mb": sizes,
              "runtime": on_node(config, "dpkg-query -W criu runc containerd docker.io").split("\n"),
              "targets": criu_floor.targets(sizes)}
    print(criu_floor.table(sizes))
    return report("hibernation", result)


if __name__ == "__main__":
    sys.exit(main())
