"""Pause, hibernate and restore sessions.

    hibernate: pause -> checkpoint (criu, through Docker) into the tenant's encrypted volume ->
               verify it as storage holds it -> only then remove the container -> close the volume.
    restore:   open the volume (any node) -> verify the checkpoint -> create the container with the
               same isolation flags -> restore into it. A checkpoint that cannot be restored
               (corrupt, incomplete, other criu/runc or session image, criu refuses) is kept aside,
               and the session starts cold: its agent relaunches the saved path stack.

Each step records its state on the volume first (checkpoints.py), so a crash anywhere leaves a
state from which `hibernate` or `restore` finishes the job; nothing is removed before a verified
checkpoint replaces it.
"""

import json
import os
import re
import signal
import subprocess
import syslog
import time
from pathlib import Path

from . import checkpoints, dockerapi, freezer, sessions
from .errors import NodeError
from .files import replace_file
from .vaultclient import NodeVault
from .volumes import Volume, now

STORAGE_TIMEOUT = 20  # seconds the share may take to take a small synced write
EARLIER_CHECKPOINT_TIMEOUT = 600  # seconds an orphaned checkpoint (see below) may take to end
STAGED = Path("/run/tos/criu-staged")  # the restore hook's records of containerd's unpacked images
SCOPE = re.compile(rb"docker-([0-9a-f]{64})\.scope")
LEFTOVER = re.compile(r"content (sha256:[0-9a-f]{64}): already exists")


class Deferred(NodeError):
    """The step could not finish safely (storage or Vault); the session is left paused."""


def log(message: str) -> str:
    syslog.openlog("tos-session", 0, syslog.LOG_DAEMON)
    syslog.syslog(syslog.LOG_NOTICE, message)
    return message


def clients(tenant_id: str) -> int:
    """TCP connections to the session's desktop stream (port 7000), seen in its network namespace.
    A paused session's kernel still completes new connections: they wait in the accept queue."""
    proc = subprocess.run(["nsenter", "-t", str(freezer.container_pid(tenant_id)), "-n", "ss", "-Htn", "state",
                           "established", "( sport = :7000 )"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise NodeError(f"{tenant_id}: cannot read the session's connections: {proc.stderr.strip()}")
    return len(proc.stdout.splitlines())


def pause(config: dict, tenant_id: str) -> str:
    sessions.tenant(config, tenant_id)
    current = freezer.state(tenant_id)
    if current == "paused":
        return f"{tenant_id}: already paused"
    if current != "running":
        raise NodeError(f"{tenant_id}: no running session on this node")
    return f"{tenant_id}: paused in {freezer.freeze(tenant_id):.3f} s"


def resume(config: dict, tenant_id: str) -> str:
    sessions.tenant(config, tenant_id)
    current = freezer.state(tenant_id)
    if current not in ("running", "paused"):
        raise NodeError(f"{tenant_id}: no session on this node"
                        + ("; a hibernated one comes back with `tos-session restore`" if current is None else ""))
    freezer.thaw(tenant_id)  # also undoes the hold of a hibernation that was interrupted
    return f"{tenant_id}: resumed" if current == "paused" else f"{tenant_id}: running"


def _storage_answers(volume: Volume) -> None:
    """A small synced write to the share, under a deadline (the mount is `hard`: a dead storage
    host would otherwise hang the step). The probe is killable; nothing else waits on it."""
    probe = volume.config.share / f".{volume.tenant}.probe-{volume.config.node}"
    try:
        subprocess.run(["dd", f"of={probe}", "conv=fsync", "status=none"], input=b"probe\n",
                       timeout=STORAGE_TIMEOUT, check=True, capture_output=True)
    except (subprocess.TimeoutExpired, subprocess.CalledProcessError) as e:
        raise Deferred(f"{volume.tenant}: the volume share did not take a synced write within "
                       f"{STORAGE_TIMEOUT} s ({type(e).__name__}); the session stays paused here, nothing "
                       f"was removed; check the storage host, then run `tos-session hibernate "
                       f"{volume.tenant}` again") from None


def _room_for_checkpoint(volume: Volume, cgroup: Path) -> None:
    """The images hold the session's anonymous memory and tmpfs (file-backed pages are not dumped):
    refuse early, not with a half-written dump."""
    stat = dict(line.split() for line in (cgroup / "memory.stat").read_text().splitlines())
    needed = (int(stat["anon"]) + int(stat["shmem"])) * 5 // 4 + 16 * 2**20
    stat = os.statvfs(volume.checkpoints)
    free = stat.f_bavail * stat.f_frsize
    if free < needed:
        raise Deferred(f"{volume.tenant}: its volume has {free // 2**20} MiB free and the checkpoint needs about "
                       f"{needed // 2**20} MiB; the session stays paused here; free space in the tenant's home "
                       f"or raise its volume_size (a new volume), then run `tos-session hibernate` again")


def _vault_answers(volume: Volume) -> None:
    """A hibernated session can only come back through Vault: while this node cannot log in, the
    paused session here is the only copy that can run, so it is kept."""
    try:
        with NodeVault(volume.config.vault):
            pass
    except NodeError as e:
        raise Deferred(f"{volume.tenant}: {e}; the session stays paused here (a hibernated session "
                       f"could not be reopened without Vault); run `tos-session hibernate "
                       f"{volume.tenant}` again once Vault answers") from None


def _earlier_checkpoint_ended(volume: Volume, tenant_id: str) -> None:
    """A hibernate killed mid-checkpoint (the state says `checkpointing`) leaves its request running
    in dockerd: containerd holds the task paused while runc and criu dump it and while it archives
    the images, then resumes it. Its images and the container are touched only once that is over.
    (Not seen: Docker's own copy into the volume after containerd resumed the task. The rerun then
    discards those images and that request fails; it has nothing else to touch.)"""
    if not volume.is_mounted() or checkpoints.read_state(volume.checkpoints)["state"] != "checkpointing" \
            or sessions.state(tenant_id) is None:
        return
    deadline = time.monotonic() + EARLIER_CHECKPOINT_TIMEOUT
    while True:
        # Fails closed: a dockerd that does not answer (an error) stops the hibernation here.
        container = dockerapi.container(sessions.container_name(tenant_id))
        if container is None:
            return
        if not container["State"]["Paused"] and not _runc_checkpointing(container["Id"]):
            return
        if time.monotonic() > deadline:
            raise Deferred(f"{tenant_id}: an earlier, interrupted checkpoint of the session is still running "
                           f"(or the container was paused with `docker pause`) after "
                           f"{EARLIER_CHECKPOINT_TIMEOUT} s; nothing was changed; run `tos-session hibernate "
                           f"{tenant_id}` again later")
        time.sleep(0.5)


def _runc_checkpointing(container_id: str) -> bool:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[0].endswith(b"runc") and b"checkpoint" in argv and container_id.encode() in argv:
            return True
    return False


def hibernate(config: dict, tenant_id: str) -> str:
    volume = sessions.volume(config, tenant_id)
    name = sessions.container_name(tenant_id)
    _earlier_checkpoint_ended(volume, tenant_id)
    current = freezer.state(tenant_id)
    folder = volume.checkpoints
    if current is None:
        # Nothing here to checkpoint: finish an earlier hibernation that got as far as removing
        # the container (close the volume), else say where the session is.
        if volume.is_mounted() and checkpoints.read_state(folder)["state"] == "checkpointed":
            volume.close()
            return log(f"{tenant_id}: hibernated (finished an interrupted hibernation; volume closed)")
        raise NodeError(f"{tenant_id}: no session on this node to hibernate")
    if current not in ("running", "paused"):
        raise NodeError(f"{tenant_id}: its container is {current}; nothing live to checkpoint "
                        f"(`tos-session restore {tenant_id}` or `stop` it)")
    if clients(tenant_id):
        raise NodeError(f"{tenant_id}: a client is connected; hibernate only disconnected sessions")
    if current == "running":
        freezer.freeze(tenant_id)
    _storage_answers(volume)
    _vault_answers(volume)
    _room_for_checkpoint(volume, freezer.cgroup_of(tenant_id))

    checkpoint = "hib-" + now().replace(":", "").replace("+0000", "Z").replace("-", "")
    checkpoints.write_state(folder, volume.config.node, "checkpointing", checkpoint)
    _discard_unfinished(folder)
    started = time.monotonic()
    cgroup = freezer.hold_for_checkpoint(tenant_id)
    try:
        # --leave-running: the (stopped) processes stay until the images are verified on storage.
        _checkpoint(name, folder, checkpoint)
        dumped = time.monotonic() - started
        manifest = checkpoints.seal(folder, checkpoint, config["image"], checkpoints.runtime_versions())
    except (NodeError, OSError, ValueError) as e:
        freezer.release(cgroup)
        raise Deferred(f"{tenant_id}: checkpoint {checkpoint} failed or could not be verified ({e}); the "
                       f"session stays paused here; run `tos-session hibernate {tenant_id}` again") from None
    checkpoints.write_state(folder, volume.config.node, "checkpointed", checkpoint)
    replace_file(_marker(volume), (json.dumps({"checkpoint": checkpoint, "node": volume.config.node,
                                                "since": now(), "bytes": manifest["bytes"]}) + "\n").encode())
    # The checkpoint is on storage and verified: now the live copy may go, and its memory with it.
    sessions.docker("rm", "--force", name)
    volume.close()
    return log(f"{tenant_id}: hibernated to {checkpoint} ({manifest['bytes'] / 2**20:.1f} MiB of images, "
               f"checkpoint {dumped:.1f} s, verified {time.monotonic() - started - dumped:.1f} s); volume closed")


def _checkpoint(name: str, folder: Path, checkpoint: str) -> None:
    argv = ["checkpoint", "create", "--leave-running", f"--checkpoint-dir={folder}", name, checkpoint]
    try:
        sessions.docker(*argv)
    except NodeError as e:
        # A checkpoint killed half-way leaves its archive in containerd's content store, and Docker
        # then refuses the next one ("content sha256:... already exists"): remove that one, retry.
        left = LEFTOVER.search(str(e))
        if not left:
            raise
        for namespace in subprocess.run(["ctr", "namespaces", "ls", "-q"], capture_output=True,
                                        text=True).stdout.split():
            subprocess.run(["ctr", "-n", namespace, "content", "rm", left[1]], capture_output=True)
        _discard_unfinished(folder)
        sessions.docker(*argv)


def _discard_unfinished(folder: Path) -> None:
    """Images without a manifest are from a hibernation that never finished: never restored."""
    for images in folder.iterdir():
        if images.is_dir() and not images.name.startswith("failed-") \
                and not (folder / f"{images.name}.manifest.json").exists():
            subprocess.run(["rm", "-rf", "--one-file-system", str(images)], check=True)


def _marker(volume: Volume) -> Path:
    """<tenant>.hibernated beside the volume: that it is hibernated, and since when (no tenant data),
    so `status` can tell without opening the volume."""
    return volume.config.share / f"{volume.tenant}.hibernated"


def _docker_root() -> Path:
    return Path(sessions.docker("info", "-f", "{{.DockerRootDir}}").stdout.strip())


def _restore_into_new_container(config: dict, t: dict, volume: Volume, checkpoint: str) -> None:
    """docker create with the session's own flags, then start it from the checkpoint. Docker 26
    restores only from the container's own checkpoints folder: the images are bind-mounted there
    (read-only) from the volume, so no copy of the session's memory lands on this node's disk."""
    argv = sessions.run_argv(config, t, str(volume.home))
    argv = ["create", *[a for a in argv[1:] if a != "--detach"]]
    container_id = sessions.docker(*argv).stdout.strip()
    target = _docker_root() / "containers" / container_id / "checkpoints" / checkpoint
    target.mkdir(parents=True)
    mounts = [target]
    subprocess.run(["mount", "--bind", "-o", "ro", str(volume.checkpoints / checkpoint), str(target)], check=True)
    try:
        # criu restores into the cgroup it recorded, and runc 1.1 (cgroup v2) does not tell it the
        # new container's: the session would land in a re-made cgroup of the old container, outside
        # the scope runc made and limited for the new one (which systemd then removes as empty), and
        # Docker could neither pause nor checkpoint it again. criu reads cgroup.img before any action
        # script runs, so the new id goes into a copy (in RAM; no tenant data in it) mounted over it.
        # Container ids are all 64 hex digits: the protobuf image stays valid.
        recorded = (target / "cgroup.img").read_bytes()
        old = SCOPE.search(recorded)
        if old and old[1].decode() != container_id:
            STAGED.mkdir(mode=0o700, parents=True, exist_ok=True)
            patched = STAGED / f"{container_id}.cgroup.img"
            patched.write_bytes(recorded.replace(old[1], container_id.encode()))
            subprocess.run(["mount", "--bind", str(patched), str(target / "cgroup.img")], check=True)
            mounts.insert(0, target / "cgroup.img")
        sessions.docker("start", "--checkpoint", checkpoint, sessions.container_name(t["id"]))
    finally:
        for mount in mounts:
            subprocess.run(["umount", str(mount)], capture_output=True)
        (STAGED / f"{container_id}.cgroup.img").unlink(missing_ok=True)
        if target.is_dir():
            target.rmdir()
        _remove_staged_copy(container_id)
    # The hook pointed criu at this container's own cgroup (see tos-criu-hook): make sure.
    cgroup = freezer.cgroup_of(t["id"])
    if cgroup.name != f"docker-{container_id}.scope":
        raise NodeError(f"the restored session is not in its container's cgroup ({cgroup})")
    freezer.signal_all(cgroup, signal.SIGCONT)  # checkpointed stopped (see freezer): carry on


def _remove_staged_copy(container_id: str) -> None:
    """containerd unpacks the images for criu and never removes them: that copy (in RAM) goes now."""
    record = STAGED / container_id
    try:
        staged = Path(record.read_text().strip())
    except FileNotFoundError:
        return
    if staged.name.startswith("ctrd-checkpoint"):
        subprocess.run(["rm", "-rf", "--one-file-system", str(staged)], check=False)
    record.unlink()


def restore(config: dict, tenant_id: str, take_over: bool = False) -> str:
    """Brings the tenant's session up on this node: from its checkpoint if it hibernated, else
    (first login, or after a stop) fresh. `tos-session start` is this too."""
    t = sessions.tenant(config, tenant_id)
    name = sessions.container_name(tenant_id)
    current = freezer.state(tenant_id)
    volume = sessions.volume(config, tenant_id)
    if current in ("running", "paused"):
        if volume.is_mounted():
            _settle(volume)
        return f"{tenant_id}: already {current} here" + (" (`tos-session resume`)" if current == "paused" else "")
    if current is not None:
        sessions.docker("rm", "--force", name)  # a restore that died half-way: its container never ran
    opened = volume.open(take_over=take_over)  # Vault and the lease: fails closed, nothing changed
    state = checkpoints.read_state(volume.checkpoints)
    if state["state"] == "running":  # never hibernated, or stopped: an ordinary start
        return sessions.start(config, tenant_id)
    if state["state"] != "checkpointed":
        return _cold_start(config, volume, tenant_id,
                           f"its last hibernation, on {state['node']}, never finished", opened)
    checkpoint = state["checkpoint"]
    versions = checkpoints.runtime_versions()
    why_not = checkpoints.verify(volume.checkpoints, checkpoint, config["image"], versions)
    # A safety net, not the fix: a second attempt before the cold start that loses the live state.
    # (First restores on fresh nodes failed at random until the restore hook's image ownership
    # served criu's root task before and after its user namespace maps; see tos-criu-hook.) A
    # restore that needed it says so, and the lab tests fail on it.
    failures = []
    for attempt in (1, 2) if why_not is None else ():
        started = time.monotonic()
        try:
            _restore_into_new_container(config, t, volume, checkpoint)
        except (NodeError, subprocess.CalledProcessError, OSError) as e:
            sessions.docker("rm", "--force", name, check=False)
            why_not = f"criu could not restore it ({str(e).strip().splitlines()[-1][:300]})"
            failures.append(log(f"{tenant_id}: restore attempt {attempt} of {checkpoint} failed: {why_not}"))
        else:
            _settle(volume)
            done = log(f"{tenant_id}: restored from {checkpoint} in {time.monotonic() - started:.1f} s"
                       + (f" (attempt {attempt})" if failures else ""))
            return "\n".join([opened, *failures, done])
    _keep_aside(volume.checkpoints, checkpoint)
    return _cold_start(config, volume, tenant_id, f"checkpoint {checkpoint} not restorable: {why_not}",
                       "\n".join([opened, *failures]))


def _settle(volume: Volume) -> None:
    """The session runs again: its checkpoint is out of date; remove it."""
    state = checkpoints.read_state(volume.checkpoints)
    if state["state"] == "checkpointed":
        for leftover in (volume.checkpoints / state["checkpoint"], volume.checkpoints / f"{state['checkpoint']}.manifest.json"):
            subprocess.run(["rm", "-rf", "--one-file-system", str(leftover)], check=True)
    if state["state"] != "running" or state.get("node") != volume.config.node:
        checkpoints.write_state(volume.checkpoints, volume.config.node, "running")
    _marker(volume).unlink(missing_ok=True)


def _keep_aside(folder: Path, checkpoint: str) -> None:
    """A checkpoint that failed to restore is kept (renamed), for an operator to look at; only the
    latest one, so failures cannot fill the volume."""
    for earlier in folder.glob("failed-*"):
        subprocess.run(["rm", "-rf", "--one-file-system", str(earlier)], check=True)
    for suffix in ("", ".manifest.json"):
        source = folder / f"{checkpoint}{suffix}"
        if source.exists():
            os.replace(source, folder / f"failed-{checkpoint}{suffix}")


def _cold_start(config: dict, volume: Volume, tenant_id: str, reason: str, opened: str) -> str:
    checkpoints.write_state(volume.checkpoints, volume.config.node, "running")
    _marker(volume).unlink(missing_ok=True)
    started = sessions.start(config, tenant_id)
    path = saved_path(volume)
    return log(f"{opened}\n{tenant_id}: COLD START ({reason}); live state is lost, the saved path stack "
               f"is back: {path}\n{started.splitlines()[-1]}")


def saved_path(volume: Volume) -> str:
    try:
        entries = json.loads((volume.home / ".tos" / "path.json").read_text())["path"]
    except (OSError, ValueError, KeyError):
        return "(none saved)"
    return " > ".join(f"L{e['level']} {e['name']}" for e in entries)


def status(config: dict, tenant_id: str | None) -> str:
    ids = [tenant_id] if tenant_id else [t["id"] for t in config["tenants"]]
    lines = [f"{'TENANT':14} {'HERE':8} {'VOLUME':10} {'STATE':14} CHECKPOINT"]
    for tid in ids:
        volume = sessions.volume(config, tid)
        here = freezer.state(tid) or "-"
        if volume.is_mounted():
            state = checkpoints.read_state(volume.checkpoints)
            where, what, cp = "open", state["state"], state.get("checkpoint") or "-"
        else:
            lease = volume.lease()
            try:
                marker = json.loads(_marker(volume).read_text())
            except FileNotFoundError:
                marker = None
            where = f"on {lease['node']}" if lease else "closed"
            what = "elsewhere" if lease else "hibernated" if marker else "stopped"
            cp = f"{marker['checkpoint']} ({marker['bytes'] / 2**20:.1f} MiB, from {marker['node']})" if marker else "-"
        lines.append(f"{tid:14} {here:8} {where:10} {what:14} {cp}")
    return "\n".join(lines)
