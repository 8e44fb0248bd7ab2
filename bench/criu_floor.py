"""The floor under hibernation (make bench-hibernation): what criu alone costs for the running
session, what each copy and hash of Docker's archive path costs, and the ratios and targets that
set the product's steps against them."""

import re

from roles.hibernation import CRIU_LOG  # the node's criu log: the last criu run's
from toskit.node.tosnode.steps import CHECKPOINT_STEPS, DUMP_FINISHED, criu_seconds

TMPFS = "/dev/shm/bench-criu"  # the node's /dev/shm: RAM, like containerd's scratch folder in /tmp
CRIU_OWN = {"hibernate": "criu dump", "restore": "criu restore"}
RATIO_LIMIT = 1.5  # each change within 1.5 x criu alone
RATE_SHARE = 0.5  # checkpoint and restore at least half the volume's raw rates, where criu alone reaches that


def node_seconds(run, command: str) -> float:
    """The command's wall time on the node itself (no ssh or Python start-up in it)."""
    out = run(f"set -e; s=$(date +%s%N); ( {command} ) >/dev/null; e=$(date +%s%N); echo elapsed_ns=$((e - s))")
    return int(re.search(r"elapsed_ns=(\d+)", out)[1]) / 1e9


def _criu_own(run, finished: bytes) -> float:
    """criu's own duration of its last run (the log's lines that matter, read over ssh)."""
    lines = run(f"grep -a '{finished.decode()}' {CRIU_LOG}").encode()
    seconds = criu_seconds(lines, finished)
    if seconds is None:
        raise SystemExit(f"bench: criu's log on the node has no '{finished.decode()}' line: {lines[-300:]!r}")
    return seconds


def measure(run, session: str, volume: str) -> dict:
    """criu, driven by runc as containerd drives it but without Docker's archive path, dumps the
    running session (--leave-running, as hibernate does) into tmpfs and into the volume (synced);
    the tmpfs images are then copied into the volume (synced) and hashed in RAM."""
    container_id = run(f"docker inspect -f '{{{{.Id}}}}' {session}").strip()
    runc_root = run(f"dirname $(ls -d /run/docker/runtime-runc/*/{container_id})").strip()  # dockerd's runc root
    on_volume, copied = f"{volume}/bench-criu", f"{volume}/bench-copy"
    found = {}
    try:
        for where, images in (("tmpfs", TMPFS), ("volume", on_volume)):
            found[f"criu_dump_to_{where}_s"] = round(node_seconds(
                run, f"rm -rf {images} && mkdir -p {images} && runc --root {runc_root} checkpoint --leave-running "
                     f"--image-path {images} {container_id} && sync -f {images}"), 2)
            found[f"criu_dump_to_{where}_criu_clock_s"] = _criu_own(run, DUMP_FINISHED)
        found["image_mb"] = round(int(run(f"du -sb {TMPFS}").split()[0]) / 2**20, 1)
        found["copy_tmpfs_to_volume_s"] = round(node_seconds(
            run, f"rm -rf {copied} && cp -r {TMPFS} {copied} && sync -f {copied}"), 2)
        found["sha256_in_ram_s"] = round(node_seconds(run, f"cat {TMPFS}/* | sha256sum"), 2)
    finally:
        run(f"rm -rf {TMPFS} {on_volume} {copied}")
    return found


def _held_back(steps: dict, change: str) -> dict:
    """The step, other than criu's own, that costs the most: what holds a missed target back."""
    name, seconds = max(((n, s) for n, s in steps.items() if n != CRIU_OWN[change]), key=lambda item: item[1])
    return {"step": name, "s": seconds}


def judge(entry: dict) -> dict:
    """Totals, rates and ratios of one size (its entry from hibernation_bench.measure)."""
    alone, hibernate, restore = entry["criu_alone"], entry["hibernate_steps"], entry["restore_steps"]
    raw = entry["volume_raw_mb_per_s"]
    image = entry["image_mb"]
    hibernate_s, restore_s = round(sum(hibernate.values()), 2), round(sum(restore.values()), 2)
    criu_restore = restore.get("criu restore")
    checkpoint_s = sum(hibernate.get(name, 0.0) for name in CHECKPOINT_STEPS)
    rates = {"checkpoint": round(image / checkpoint_s, 2), "hibernate": round(image / hibernate_s, 2),
             "restore": round(image / restore_s, 2),
             "criu_dump_to_volume": round(alone["image_mb"] / alone["criu_dump_to_volume_s"], 2),
             "criu_restore": round(image / criu_restore, 2) if criu_restore else None}
    ratios = {"hibernate_vs_criu_alone": round(hibernate_s / alone["criu_dump_to_volume_s"], 2),
              "restore_vs_criu_alone": round(restore_s / criu_restore, 2) if criu_restore else None,
              "checkpoint_vs_raw_write": round(rates["checkpoint"] / raw["write"], 2),
              "restore_vs_raw_read": round(rates["restore"] / raw["read"], 2),
              "criu_alone_vs_raw_write": round(rates["criu_dump_to_volume"] / raw["write"], 2),
              "criu_alone_vs_raw_read": round(rates["criu_restore"] / raw["read"], 2) if criu_restore else None}
    held = {}
    if ratios["hibernate_vs_criu_alone"] > RATIO_LIMIT:
        held["hibernate"] = _held_back(hibernate, "hibernate")
    if ratios["restore_vs_criu_alone"] is None or ratios["restore_vs_criu_alone"] > RATIO_LIMIT:
        held["restore"] = _held_back(restore, "restore")
    return {**entry, "hibernate_s": hibernate_s, "restore_s": restore_s, "mb_per_s": rates, "ratios": ratios,
            "held_back_by": held}


def _rate_target_holds(ratios: dict, product: str, floor: str) -> bool:
    """At least half the raw rate, where criu alone reaches half of it (else criu is the floor)."""
    return ratios[floor] is None or ratios[floor] < RATE_SHARE or ratios[product] >= RATE_SHARE


def targets(sizes: dict) -> dict:
    every = sizes.values()
    return {
        "pause_under_0_2_s": all(s["pause_s_median"] < 0.2 for s in every),
        "hibernate_within_1_5_x_criu_alone": all(s["ratios"]["hibernate_vs_criu_alone"] <= RATIO_LIMIT for s in every),
        "restore_within_1_5_x_criu_alone": all((s["ratios"]["restore_vs_criu_alone"] or 99) <= RATIO_LIMIT
                                               for s in every),
        "checkpoint_ge_half_raw_write_where_criu_reaches_it": all(
            _rate_target_holds(s["ratios"], "checkpoint_vs_raw_write", "criu_alone_vs_raw_write") for s in every),
        "restore_ge_half_raw_read_where_criu_reaches_it": all(
            _rate_target_holds(s["ratios"], "restore_vs_raw_read", "criu_alone_vs_raw_read") for s in every),
    }


def table(sizes: dict) -> str:
    """The per-step table, one row per size and change, seconds per step, as the README shows it."""
    rows = []
    for size, s in sizes.items():
        alone = s["criu_alone"]
        for change, total, floor in (("hibernate", s["hibernate_s"], alone["criu_dump_to_volume_s"]),
                                     ("restore", s["restore_s"], s["restore_steps"].get("criu restore"))):
            steps = ", ".join(f"{name} {seconds:.2f}" for name, seconds in s[f"{change}_steps"].items())
            rows.append(f"| {size} MB | {s['image_mb']} MiB | {change} | {total:.1f} s | {steps} | "
                        f"{floor} s | {s['ratios'][f'{change}_vs_criu_alone']} |")
        rows.append(f"| {size} MB | {alone['image_mb']} MiB | criu alone | | to tmpfs "
                    f"{alone['criu_dump_to_tmpfs_s']}, to volume {alone['criu_dump_to_volume_s']}, copy tmpfs to "
                    f"volume {alone['copy_tmpfs_to_volume_s']}, sha256 in RAM {alone['sha256_in_ram_s']} | | |")
    head = ["| session | images | change | total | steps (s) | criu alone (s) | x criu alone |",
            "|---|---|---|---|---|---|---|"]
    return "\n".join([*head, *rows])
