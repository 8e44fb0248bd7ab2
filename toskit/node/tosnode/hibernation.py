"""Pause and hibernate sessions (restore.py brings them back).

    hibernate: pause -> checkpoint (criu, through runc) into the tenant's encrypted volume ->
               verify it as storage holds it -> only then remove the container -> close the volume.

Each step records its state on the volume first (checkpoints.py), so a crash anywhere leaves a
state from which `hibernate` or `restore` finishes the job; nothing is removed before a verified
checkpoint replaces it.
"""

import json
import os
import signal
import subprocess
import syslog
import time
from pathlib import Path

from . import checkpoints, dockerapi, freezer, sessions
from .errors import NodeError
from .files import now, replace_file
from .nodeconfig import criu_log, criu_staged
from .steps import CHECKPOINT_STEPS, DUMP_FINISHED, CriuLog, Steps
from .vaultclient import NodeVault
from .volumes import Volume

STORAGE_TIMEOUT = 20  # seconds the share may take to take a small synced write
EARLIER_CHECKPOINT_TIMEOUT = 600  # seconds an orphaned checkpoint (see below) may take to end
UNPACK_QUIET = 120  # seconds an image in sight and its folder unwritten: no dockerd is unpacking it
REMOVE_TIMEOUT = 120  # seconds dockerd may take to remove the (paused, stopped) container
STRANGER_TIMEOUT = 15  # seconds a paused session's health probe may take to be killed by Docker
CONFIRM_AFTER = 2  # seconds between two looks that both find no earlier checkpoint under way
CONTAINERD_TMP = Path("/tmp")  # containerd's temporary folder (its unit sets no XDG_RUNTIME_DIR or TMPDIR)
RUNC_ROOTS = Path("/run/docker/runtime-runc")  # dockerd's runc state: a folder per containerd namespace
CRIU_WORK = Path("/run/tos/criu-work")  # tmpfs
SYSTEMD = Path("/run/systemd/system")  # there when systemd runs the host
CHANNEL_PORT = 7000  # the session agent's WebSocket (toskit/node/session_image/tos-session-agent, its default)


class Deferred(NodeError):
    """The step could not finish safely (storage or Vault); the session is left paused."""


def log(message: str) -> str:
    syslog.openlog("tos-session", 0, syslog.LOG_DAEMON)
    syslog.syslog(syslog.LOG_NOTICE, message)
    return message


def clients(tenant_id: str) -> int:
    """TCP connections to the session channel (browser tabs, through the node API), seen in its
    network namespace. A paused session's kernel still completes new connections: they wait in the accept queue."""
    proc = subprocess.run(["nsenter", "-t", str(freezer.container_pid(tenant_id)), "-n", "ss", "-Htn", "state",
                           "established", f"( sport = :{CHANNEL_PORT} )"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise NodeError(f"{tenant_id}: cannot read the session's connections: {proc.stderr.strip()}")
    return len(proc.stdout.splitlines())


def channel_address(tenants_file: dict, tenant_id: str) -> str:
    """Where the session's channel (its agent's WebSocket) is, ADDRESS:PORT on its tenant network:
    only this node reaches it (the tenant firewall); the node API relays a gateway's channel there."""
    sessions.tenant(tenants_file, tenant_id)
    found = sessions.container(tenant_id)
    if found is None or freezer.state(tenant_id, found) != "running":
        raise NodeError(f"{tenant_id}: no running session on this node (a paused one is resumed first)")
    return f'{next(iter(found["NetworkSettings"]["Networks"].values()))["IPAddress"]}:{CHANNEL_PORT}'


def pause(tenants_file: dict, tenant_id: str) -> str:
    sessions.tenant(tenants_file, tenant_id)
    current = freezer.state(tenant_id)
    if current == "paused" and sessions.state(tenant_id) != "paused":  # dockerd refused it before
        freezer.hand_to_docker(tenant_id, freezer.cgroup_of(tenant_id))
        return f"{tenant_id}: paused (handed to Docker now)"
    if current == "paused":
        return f"{tenant_id}: already paused"
    if current != "running":
        raise NodeError(f"{tenant_id}: no running session on this node")
    return f"{tenant_id}: paused in {freezer.freeze(tenant_id):.3f} s"


def resume(tenants_file: dict, tenant_id: str) -> str:
    sessions.tenant(tenants_file, tenant_id)
    current = freezer.state(tenant_id)
    if current not in ("running", "paused"):
        raise NodeError(f"{tenant_id}: no session on this node"
                        + ("; a hibernated one comes back with `tos-session restore`" if current is None else ""))
    freezer.thaw(tenant_id)  # also undoes the hold of a hibernation that was interrupted
    return f"{tenant_id}: resumed" if current == "paused" else f"{tenant_id}: running"


def _storage_answers(volume: Volume) -> None:
    """A small synced write to the share, under a deadline (the mount is `hard`: a dead storage
    host would otherwise hang the step). The probe is killable; nothing else waits on it."""
    probe = volume.node.share / f".{volume.tenant}.probe-{volume.node.name}"
    try:
        subprocess.run(["dd", f"of={probe}", "conv=fsync", "status=none"], input=b"probe\n",
                       timeout=STORAGE_TIMEOUT, check=True, capture_output=True)
    except (subprocess.TimeoutExpired, subprocess.CalledProcessError) as e:
        raise Deferred(f"{volume.tenant}: the volume share did not take a synced write within "
                       f"{STORAGE_TIMEOUT} s ({type(e).__name__}); the session stays paused here, nothing "
                       f"was removed; check the storage host, then run `tos-session hibernate "
                       f"{volume.tenant}` again") from None


def _no_strangers(tenant_id: str) -> None:
    """Nothing but the session's own processes. Docker starts no probe or exec in a container it
    paused and kills a probe it was running, but a probe caught entering (runc's helper) is frozen
    there for good: what is left of Docker's probes is killed here (SIGKILL: the only signal a
    frozen task takes). An operator's `docker exec` is named, and the session stays paused."""
    found = sessions.container(tenant_id)
    init = found["State"]["Pid"]
    cgroup = freezer.cgroup_of(tenant_id, init)
    deadline = time.monotonic() + STRANGER_TIMEOUT
    while left := freezer.strangers(cgroup, init):
        for pid, _, probe in left:
            if probe:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if time.monotonic() > deadline:
            named = ", ".join(f"{pid} ({command})" for pid, command, _ in left)
            raise Deferred(f"{tenant_id}: processes started in the session by `docker exec` are still there: "
                           f"{named}; criu cannot checkpoint them; the session stays paused here; end them "
                           f"(`kill -9 PID` on this node: a frozen process takes no other signal), then run "
                           f"`tos-session hibernate {tenant_id}` again")
        time.sleep(0.2)


def _make_room(volume: Volume, cgroup: Path) -> None:
    """The images of an interrupted hibernation go first: the room they hold is this checkpoint's
    (counted as taken, a retry after a kill was refused for want of space it would have freed).
    Then the images hold the session's anonymous memory and tmpfs (file-backed pages are not
    dumped): refuse early, not with a half-written dump."""
    _discard_unfinished(volume.checkpoints)
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
        with NodeVault(volume.node.vault):
            pass
    except NodeError as e:
        raise Deferred(f"{volume.tenant}: {e}; the session stays paused here (a hibernated session "
                       f"could not be reopened without Vault); run `tos-session hibernate "
                       f"{volume.tenant}` again once Vault answers") from None


def _earlier_checkpoint_ended(volume: Volume, tenant_id: str) -> None:
    """A hibernate killed mid-checkpoint (the state says `checkpointing`) leaves its runc and criu
    dumping the (paused) session into the volume. A checkpoint through Docker (an earlier version of
    this tool, or an operator's `docker checkpoint create`) goes on longer: containerd archives
    criu's scratch folder into its content store as an image and removes the folder, then dockerd
    unpacks the image into the checkpoint folder and deletes it. Images and the container are
    touched only once all that is over: a rerun that removed the folder while dockerd unpacked into
    it failed on the lab. Between two of those steps nothing shows for a few milliseconds, so "over"
    takes two looks CONFIRM_AFTER apart. Images that no dockerd will unpack (`_orphaned`) are removed."""
    if not volume.is_mounted() or checkpoints.read_state(volume.checkpoints)["state"] != "checkpointing" \
            or sessions.state(tenant_id) is None:
        return
    deadline = time.monotonic() + EARLIER_CHECKPOINT_TIMEOUT
    first_seen = {}  # image: when this run first saw it, with no checkpoint under way since
    clear_since = None  # when this run first found nothing under way, with nothing seen since
    why = ""
    while True:
        # Fails closed: a dockerd that does not answer (an error) stops the hibernation here.
        container = sessions.container(tenant_id)
        if container is None:
            return
        scratch = _dump_scratch()
        images = [] if scratch else _checkpoint_images(container["Id"])
        looked = time.monotonic()
        if scratch or _runc_checkpointing(container["Id"]):
            first_seen, clear_since = {}, None
            why = f"criu dumping, or containerd archiving ({', '.join(map(str, scratch)) or 'runc checkpoint'})"
        elif images:
            clear_since = None
            first_seen = {image: first_seen.get(image, looked) for image in images}
            why = f"dockerd unpacking {', '.join(name for _, name in images)}"
            if _orphaned(first_seen, looked, volume.checkpoints):
                # The dockerd that was to unpack them is gone (restarted mid-request).
                for namespace, name in images:
                    subprocess.run(["ctr", "-n", namespace, "images", "rm", name], capture_output=True)
                return
        elif clear_since is not None and looked - clear_since >= CONFIRM_AFTER:
            return
        else:
            clear_since = clear_since if clear_since is not None else looked
        if looked > deadline:
            raise Deferred(f"{tenant_id}: an earlier, interrupted checkpoint of the session is still under way "
                           f"after {EARLIER_CHECKPOINT_TIMEOUT} s ({why}); nothing was changed; run `tos-session "
                           f"hibernate {tenant_id}` again later (a scratch folder left by a containerd that "
                           f"died mid-checkpoint holds it off until removed)")
        time.sleep(0.5)


def _dump_scratch() -> list:
    """containerd's scratch folders of checkpoints (ctrd-checkpoint* in its temporary folder): one
    lives from before runc starts a dump until containerd has archived the images. A restore unpacks
    into a folder of the same name, which the CRIU hook records (criu_staged): those are left out."""
    staged = criu_staged()
    restores = set()
    for record in staged.iterdir() if staged.is_dir() else ():
        try:
            if len(record.name) == 64:
                restores.add(record.read_text().strip())
        except (FileNotFoundError, IsADirectoryError):  # removed by the restore meanwhile
            pass
    return [folder for folder in CONTAINERD_TMP.glob("ctrd-checkpoint*") if str(folder) not in restores]


def _orphaned(first_seen: dict, looked: float, folder: Path) -> bool:
    """Every image in sight for UNPACK_QUIET, and nothing written into unfinished images for as
    long. The folder's age alone says nothing: dockerd makes it when the request starts, so after a
    dump longer than that, images would look orphaned in the moment before dockerd unpacks them."""
    return all(looked - seen >= UNPACK_QUIET for seen in first_seen.values()) \
        and time.time() - _last_write(folder) > UNPACK_QUIET


def _namespaces() -> list:
    """containerd's namespaces (Docker's is moby, or moby-<uid>.<gid> under userns-remap)."""
    proc = subprocess.run(["ctr", "namespaces", "ls", "-q"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise NodeError(f"containerd does not answer: {proc.stderr.strip()}; check `systemctl status containerd`")
    return proc.stdout.split()


def _checkpoint_images(container_id: str) -> list:
    """(namespace, name) of the container's checkpoint archives in containerd: each is kept as an
    image, containerd.io/checkpoint/<id>:<time>, until dockerd has unpacked it into the checkpoint
    folder (then dockerd deletes it)."""
    found = []
    for namespace in _namespaces():
        names = subprocess.run(["ctr", "-n", namespace, "images", "ls", "-q"], capture_output=True,
                               text=True).stdout.split()
        found += [(namespace, n) for n in names if n.startswith(f"containerd.io/checkpoint/{container_id}:")]
    return found


def _unfinished(folder: Path) -> list:
    """Images without a manifest: from a hibernation that never finished, never restored."""
    return [images for images in folder.iterdir() if images.is_dir() and not images.name.startswith("failed-")
            and not (folder / f"{images.name}.manifest.json").exists()]


def _last_write(folder: Path) -> float:
    """When anything was last written into unfinished images (0: there are none)."""
    return max((path.stat().st_mtime for images in _unfinished(folder) for path in [images, *images.iterdir()]),
               default=0.0)


def _runc_checkpointing(container_id: str) -> bool:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[0].endswith(b"runc") and b"checkpoint" in argv and container_id.encode() in argv:
            return True
    return False


def hibernate(tenants_file: dict, tenant_id: str) -> str:
    volume = sessions.volume(tenants_file, tenant_id)
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
    steps = Steps("hibernate", tenant_id)
    with steps.step("pause"):
        pause(tenants_file, tenant_id)  # also hands to Docker a session frozen while dockerd refused
    with steps.step("checks"):
        _no_strangers(tenant_id)
        _storage_answers(volume)
        _vault_answers(volume)
        _make_room(volume, freezer.cgroup_of(tenant_id))

    checkpoint = "hib-" + now().replace(":", "").replace("+0000", "Z").replace("-", "")
    checkpoints.write_state(folder, volume.node.name, "checkpointing", checkpoint)
    cgroup = freezer.hold_for_checkpoint(tenant_id)
    try:
        # --leave-running: the (stopped) processes stay until the images are verified on storage.
        criu = CriuLog(criu_log())
        with steps.step("checkpoint"):
            _checkpoint(name, folder, checkpoint)
        steps.split("checkpoint", "criu dump", criu.seconds(DUMP_FINISHED), "runc")
        with steps.step("flush"):
            checkpoints.flush(folder / checkpoint)
        with steps.step("versions"):
            versions = checkpoints.runtime_versions()
        with steps.step("verify"):
            manifest = checkpoints.seal(folder, checkpoint, tenants_file["image"], versions)
    except (NodeError, OSError, ValueError) as e:
        freezer.release(cgroup)
        raise Deferred(f"{tenant_id}: checkpoint {checkpoint} failed or could not be verified ({e}); the "
                       f"session stays paused here; run `tos-session hibernate {tenant_id}` again") from None
    checkpoints.write_state(folder, volume.node.name, "checkpointed", checkpoint)
    replace_file(marker(volume), (json.dumps({"checkpoint": checkpoint, "node": volume.node.name,
                                                "since": now(), "bytes": manifest["bytes"]}) + "\n").encode())
    # The checkpoint is on storage and verified: now the live copy may go, and its memory with it.
    with steps.step("remove"):
        try:  # the API: no docker command's start-up
            dockerapi.call("DELETE", f"/containers/{name}?force=1", timeout=REMOVE_TIMEOUT)
        except dockerapi.NotFound:
            pass  # gone already: what this step is for
    with steps.step("close"):
        volume.close()
    dumped = sum(steps.seconds.get(step, 0.0) for step in CHECKPOINT_STEPS)
    done = log(f"{tenant_id}: hibernated to {checkpoint} ({manifest['bytes'] / 2**20:.1f} MiB of images, "
               f"checkpoint {dumped:.1f} s, verified {steps.seconds['verify']:.1f} s); volume closed")
    return f"{done}\n{log(steps.line())}"


def _checkpoint(name: str, folder: Path, checkpoint: str) -> None:
    """criu, driven by runc as containerd drives it for `docker checkpoint create --leave-running`
    (dockerd's runc state, the same options), writes its images straight into the volume. Docker's
    own path had criu write them into containerd's scratch folder, containerd archive and hash that
    into its content store, and dockerd unpack it into the volume: three copies and a hash per MiB
    more (make bench-hibernation measured them). A restore reads these images as Docker's would."""
    found = dockerapi.container(name)
    if found is None:
        raise NodeError(f"{name}: the container is gone")
    states = list(RUNC_ROOTS.glob(f"*/{found['Id']}"))
    if len(states) != 1:
        raise NodeError(f"{name}: its runc state is not under {RUNC_ROOTS} (found {len(states)}); "
                        f"check that dockerd runs its containers with runc")
    work = CRIU_WORK / found["Id"]  # criu's work folder (its log goes to runc.conf's log-file): RAM
    work.mkdir(mode=0o700, parents=True, exist_ok=True)
    argv = ["runc", "--root", str(states[0].parent), "checkpoint", "--leave-running",
            "--image-path", str(folder / checkpoint), "--work-path", str(work), found["Id"]]
    if SYSTEMD.is_dir():
        # Its own scope: a stop of the unit that runs this tool (the idle policy's) does not kill criu
        # while its parasite is inside the session's processes; nor does a Ctrl-C (its own session).
        argv = ["systemd-run", "--scope", "--quiet", "--collect", *argv]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, start_new_session=True)
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", str(work)], capture_output=True)
    if proc.returncode != 0:
        raise NodeError(f"runc checkpoint failed: {(proc.stderr or proc.stdout).strip()[-600:]}")


def _discard_unfinished(folder: Path) -> None:
    for images in _unfinished(folder):
        for attempt in range(10):  # something may still be writing into it: rm again
            removed = subprocess.run(["rm", "-rf", "--one-file-system", str(images)], capture_output=True, text=True)
            if removed.returncode == 0:
                break
            time.sleep(1)
        else:
            raise Deferred(f"{folder.parent.name}: cannot remove the unfinished checkpoint {images.name} "
                           f"({removed.stderr.strip()}); the session stays paused here; run `tos-session hibernate` again")


def marker(volume: Volume) -> Path:
    """<tenant>.hibernated beside the volume: that it is hibernated, and since when (no tenant data),
    so `status` can tell without opening the volume."""
    return volume.node.share / f"{volume.tenant}.hibernated"
