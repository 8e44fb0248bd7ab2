"""Bring a session back, on any node (`tos-session restore`, and `start`).

    restore:   open the volume (any node) -> verify the checkpoint -> create the container with the
               same isolation flags -> restore into it. A checkpoint that cannot be restored
               (corrupt, incomplete, other criu/runc or session image, criu refuses) is kept aside,
               and the session starts cold: its agent relaunches the saved path stack.
"""

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import urlencode

from . import checkpoints, dockerapi, freezer, sessions
from .errors import NodeError
from .hibernation import CONTAINERD_TMP, log, marker
from .nodeconfig import criu_log, criu_staged
from .steps import RESTORE_FINISHED, CriuLog, Steps
from .volumes import Volume

SCOPE = re.compile(rb"docker-([0-9a-f]{64})\.scope")
RESTORE_TIMEOUT = 1800  # seconds dockerd may take to restore (criu moves ~1-5 MB/s under TCG); the node API waits 600


def restore(tenants_file: dict, tenant_id: str, take_over: bool = False) -> str:
    """Brings the tenant's session up on this node: from its checkpoint if it hibernated, else
    (first login, or after a stop) fresh. `tos-session start` is this too."""
    t = sessions.tenant(tenants_file, tenant_id)
    name = sessions.container_name(tenant_id)
    current = freezer.state(tenant_id)
    volume = sessions.volume(tenants_file, tenant_id)
    if current in ("running", "paused"):
        if volume.is_mounted():
            _settle(volume)
        return f"{tenant_id}: already {current} here" + (" (`tos-session resume`)" if current == "paused" else "")
    if tenants_file.get("drained"):  # before anything changes: no volume opened, no container touched
        raise NodeError(f"this node is drained (session_node_drained in its host data): it takes no new session; "
                        f"start {tenant_id} on another node, or set session_node_drained = False and deploy")
    if current is not None:
        sessions.docker("rm", "--force", name)  # a restore that died half-way: its container never ran
    # Before the volume opens: a node not (yet) set up for restores stops here, nothing changed.
    staged = criu_staged()
    steps = Steps("restore", tenant_id)
    with steps.step("open"):
        opened = volume.open(take_over=take_over)  # Vault and the lease: fails closed, nothing changed
    state = checkpoints.read_state(volume.checkpoints)
    if state["state"] == "running":  # never hibernated, or stopped: an ordinary start
        return f"{opened}\n{sessions.start(tenants_file, tenant_id).splitlines()[-1]}"
    if state["state"] != "checkpointed":
        return _cold_start(tenants_file, volume, tenant_id,
                           f"its last hibernation, on {state['node']}, never finished", opened)
    checkpoint = state["checkpoint"]
    with steps.step("versions"):
        versions = checkpoints.runtime_versions()
    with steps.step("verify"):
        why_not = checkpoints.verify(volume.checkpoints, checkpoint, tenants_file["image"], versions)
    # A safety net, not the fix: a second attempt before the cold start that loses the live state.
    # (First restores on fresh nodes failed at random until the restore hook's image ownership
    # served criu's root task before and after its user namespace maps; see tos-criu-hook.) A
    # restore that needed it says so, and the lab tests fail on it.
    failures = []
    for attempt in (1, 2) if why_not is None else ():
        started = time.monotonic()
        try:
            _restore_into_new_container(tenants_file, t, volume, checkpoint, staged, steps)
        except (NodeError, subprocess.CalledProcessError, OSError) as e:
            sessions.docker("rm", "--force", name, check=False)
            why_not = f"criu could not restore it ({str(e).strip().splitlines()[-1][:300]})"
            failures.append(log(f"{tenant_id}: restore attempt {attempt} of {checkpoint} failed: {why_not}"))
        else:
            with steps.step("settle"):
                _settle(volume)
            done = log(f"{tenant_id}: restored from {checkpoint} in {time.monotonic() - started:.1f} s"
                       + (f" (attempt {attempt})" if failures else ""))
            return "\n".join([opened, *failures, done, log(steps.line())])
    _keep_aside(volume.checkpoints, checkpoint)
    return _cold_start(tenants_file, volume, tenant_id, f"checkpoint {checkpoint} not restorable: {why_not}",
                       "\n".join([opened, *failures]))


def _settle(volume: Volume) -> None:
    """The session runs again: its checkpoint is out of date; remove it."""
    state = checkpoints.read_state(volume.checkpoints)
    if state["state"] == "checkpointed":
        for leftover in (volume.checkpoints / state["checkpoint"], volume.checkpoints / f"{state['checkpoint']}.manifest.json"):
            subprocess.run(["rm", "-rf", "--one-file-system", str(leftover)], check=True)
    if state["state"] != "running" or state.get("node") != volume.node.name:
        checkpoints.write_state(volume.checkpoints, volume.node.name, "running")
    marker(volume).unlink(missing_ok=True)


def _keep_aside(folder: Path, checkpoint: str) -> None:
    """A checkpoint that failed to restore is kept (renamed), for an operator to look at; only the
    latest one, so failures cannot fill the volume."""
    for earlier in folder.glob("failed-*"):
        subprocess.run(["rm", "-rf", "--one-file-system", str(earlier)], check=True)
    for suffix in ("", ".manifest.json"):
        source = folder / f"{checkpoint}{suffix}"
        if source.exists():
            os.replace(source, folder / f"failed-{checkpoint}{suffix}")


def _cold_start(tenants_file: dict, volume: Volume, tenant_id: str, reason: str, opened: str) -> str:
    checkpoints.write_state(volume.checkpoints, volume.node.name, "running")
    marker(volume).unlink(missing_ok=True)
    started = sessions.start(tenants_file, tenant_id)
    path = saved_path(volume)
    return log(f"{opened}\n{tenant_id}: COLD START ({reason}); live state is lost, the saved path stack "
               f"is back: {path}\n{started.splitlines()[-1]}")


def saved_path(volume: Volume) -> str:
    try:
        entries = json.loads((volume.home / ".tos" / "path.json").read_text())["path"]
    except (OSError, ValueError, KeyError):
        return "(none saved)"
    return " > ".join(f"L{e['level']} {e['name']}" for e in entries)


def _docker_root() -> Path:
    return Path(dockerapi.call("GET", "/info")["DockerRootDir"])


def _restore_into_new_container(tenants_file: dict, t: dict, volume: Volume, checkpoint: str, staged: Path,
                                steps: Steps) -> None:
    """docker create with the session's own flags, then start it from the checkpoint. Docker 26
    restores only from the container's own checkpoints folder: the images are bind-mounted there
    (read-only) from the volume, so no copy of the session's memory lands on this node's disk."""
    argv = sessions.run_argv(tenants_file, t, str(volume.home))
    argv = ["create", *[a for a in argv[1:] if a != "--detach"]]
    with steps.step("create"):
        container_id = sessions.docker(*argv).stdout.strip()
    target = _docker_root() / "containers" / container_id / "checkpoints" / checkpoint
    target.mkdir(parents=True)
    mounts = [target]
    scratch_before = set(CONTAINERD_TMP.glob("ctrd-checkpoint*"))
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
            staged.mkdir(mode=0o700, parents=True, exist_ok=True)
            patched = staged / f"{container_id}.cgroup.img"
            patched.write_bytes(recorded.replace(old[1], container_id.encode()))
            subprocess.run(["mount", "--bind", str(patched), str(target / "cgroup.img")], check=True)
            mounts.insert(0, target / "cgroup.img")
        criu = CriuLog(criu_log())
        with steps.step("start"):
            # The Engine API, not the docker command: one Go program's start-up (1-1.5 s under TCG) less.
            dockerapi.call("POST", f"/containers/{sessions.container_name(t['id'])}/start?"
                                   f"{urlencode({'checkpoint': checkpoint})}", timeout=RESTORE_TIMEOUT)
        # Docker's part: dockerd archives the images into containerd's content store, containerd unpacks them
        # into its scratch folder for runc and criu (Docker 26 restores no other way), and the runtimes' start-ups.
        steps.split("start", "criu restore", criu.seconds(RESTORE_FINISHED), "docker archive and runtime")
    finally:
        with steps.step("clean up"):
            _remove_unrecorded_copies(scratch_before, target / "inventory.img")
            for mount in mounts:
                subprocess.run(["umount", str(mount)], capture_output=True)
            (staged / f"{container_id}.cgroup.img").unlink(missing_ok=True)
            if target.is_dir():
                target.rmdir()
            _remove_staged_copy(staged, container_id)
    # The hook pointed criu at this container's own cgroup (see tos-criu-hook): make sure.
    cgroup = freezer.cgroup_of(t["id"])
    if cgroup.name != f"docker-{container_id}.scope":
        raise NodeError(f"the restored session is not in its container's cgroup ({cgroup})")
    freezer.signal_all(cgroup, signal.SIGCONT)  # checkpointed stopped (see freezer): carry on


def _remove_unrecorded_copies(before: set, inventory: Path) -> None:
    """containerd unpacks the images for every restore and never removes them; a restore that failed
    before the CRIU hook recorded its copy leaves it, and hibernate would take it for a dump under
    way (hibernation._dump_scratch). Copies of this checkpoint (the same inventory.img) that this
    restore made go."""
    try:
        ours = inventory.read_bytes()
    except OSError:
        return
    for folder in set(CONTAINERD_TMP.glob("ctrd-checkpoint*")) - before:
        try:
            if (folder / "inventory.img").read_bytes() != ours:
                continue
        except OSError:
            continue
        subprocess.run(["rm", "-rf", "--one-file-system", str(folder)], check=False)


def _remove_staged_copy(staged: Path, container_id: str) -> None:
    """containerd unpacks the images for criu and never removes them: that copy (in RAM) goes now
    (the CRIU hook recorded where, in `staged`)."""
    record = staged / container_id
    try:
        images = Path(record.read_text().strip())
    except FileNotFoundError:
        return
    if images.name.startswith("ctrd-checkpoint"):
        subprocess.run(["rm", "-rf", "--one-file-system", str(images)], check=False)
    record.unlink()
