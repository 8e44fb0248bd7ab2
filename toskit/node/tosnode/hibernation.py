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

import http.client
import json
import os
import socket
import subprocess
import syslog
import time
from pathlib import Path

from . import checkpoints, sessions
from .errors import NodeError
from .files import replace_file
from .vaultclient import NodeVault
from .volumes import Volume, now

STORAGE_TIMEOUT = 20  # seconds the share may take to take a small synced write


class Deferred(NodeError):
    """The step could not finish safely (storage or Vault); the session is left paused."""


def log(message: str) -> str:
    syslog.openlog("tos-session", 0, syslog.LOG_DAEMON)
    syslog.syslog(syslog.LOG_NOTICE, message)
    return message


def container_pid(tenant_id: str) -> int:
    return int(sessions.docker("inspect", "-f", "{{.State.Pid}}", sessions.container_name(tenant_id)).stdout)


def clients(tenant_id: str) -> int:
    """TCP connections to the session's desktop stream (port 7000), seen in its network namespace.
    A paused session's kernel still completes new connections: they wait in the accept queue."""
    proc = subprocess.run(["nsenter", "-t", str(container_pid(tenant_id)), "-n", "ss", "-Htn", "state",
                           "established", "( sport = :7000 )"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise NodeError(f"{tenant_id}: cannot read the session's connections: {proc.stderr.strip()}")
    return len(proc.stdout.splitlines())


def pause(config: dict, tenant_id: str) -> str:
    sessions.tenant(config, tenant_id)
    current = sessions.state(tenant_id)
    if current == "paused":
        return f"{tenant_id}: already paused"
    if current != "running":
        raise NodeError(f"{tenant_id}: no running session on this node")
    started = time.monotonic()
    docker_api("POST", f"/containers/{sessions.container_name(tenant_id)}/pause")  # cgroup freezer: no CPU
    return f"{tenant_id}: paused in {time.monotonic() - started:.2f} s"


def resume(config: dict, tenant_id: str) -> str:
    sessions.tenant(config, tenant_id)
    current = sessions.state(tenant_id)
    if current == "running":
        return f"{tenant_id}: already running"
    if current != "paused":
        raise NodeError(f"{tenant_id}: no paused session on this node"
                        + ("; a hibernated one comes back with `tos-session restore`" if current is None else ""))
    docker_api("POST", f"/containers/{sessions.container_name(tenant_id)}/unpause")
    return f"{tenant_id}: resumed"


class _DockerSocket(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect("/run/docker.sock")


def docker_api(method: str, path: str) -> None:
    """One call to the Docker API on its socket: a pause must take well under 0.2 s, and the
    docker command alone takes longer than that to start (the freeze itself is milliseconds)."""
    connection = _DockerSocket("localhost", timeout=60)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        body = response.read().decode(errors="replace")
    finally:
        connection.close()
    if response.status >= 300:
        raise NodeError(f"docker {method} {path} failed: {response.status} {body.strip()}")


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


def hibernate(config: dict, tenant_id: str) -> str:
    volume = sessions.volume(config, tenant_id)
    name = sessions.container_name(tenant_id)
    current = sessions.state(tenant_id)
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
        docker_api("POST", f"/containers/{name}/pause")
    _storage_answers(volume)
    _vault_answers(volume)

    checkpoint = "hib-" + now().replace(":", "").replace("+0000", "Z").replace("-", "")
    checkpoints.write_state(folder, volume.config.node, "checkpointing", checkpoint)
    _discard_unfinished(folder)
    started = time.monotonic()
    # --leave-running: the paused processes stay until the images are verified on storage.
    sessions.docker("checkpoint", "create", "--leave-running", f"--checkpoint-dir={folder}", name, checkpoint)
    if sessions.state(tenant_id) == "running":
        docker_api("POST", f"/containers/{name}/pause")  # runc may thaw what it froze for the dump: keep it still
    dumped = time.monotonic() - started
    try:
        manifest = checkpoints.seal(folder, checkpoint, config["image"], checkpoints.runtime_versions())
    except (OSError, ValueError) as e:
        raise Deferred(f"{tenant_id}: checkpoint {checkpoint} could not be verified ({e}); the session "
                       f"stays paused; run `tos-session hibernate {tenant_id}` again") from None
    checkpoints.write_state(folder, volume.config.node, "checkpointed", checkpoint)
    replace_file(_marker(volume), (json.dumps({"checkpoint": checkpoint, "node": volume.config.node,
                                                "since": now(), "bytes": manifest["bytes"]}) + "\n").encode())
    # The checkpoint is on storage and verified: now the live copy may go, and its memory with it.
    sessions.docker("rm", "--force", name)
    volume.close()
    return log(f"{tenant_id}: hibernated to {checkpoint} ({manifest['bytes'] / 2**20:.1f} MiB of images, "
               f"checkpoint {dumped:.1f} s, verified {time.monotonic() - started - dumped:.1f} s); volume closed")


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
    subprocess.run(["mount", "--bind", "-o", "ro", str(volume.checkpoints / checkpoint), str(target)], check=True)
    try:
        sessions.docker("start", "--checkpoint", checkpoint, sessions.container_name(t["id"]))
    finally:
        subprocess.run(["umount", str(target)], check=False)
        target.rmdir()


def restore(config: dict, tenant_id: str, take_over: bool = False) -> str:
    """Brings the tenant's session up on this node: from its checkpoint if it hibernated, else
    (first login, or after a stop) fresh. `tos-session start` is this too."""
    t = sessions.tenant(config, tenant_id)
    name = sessions.container_name(tenant_id)
    current = sessions.state(tenant_id)
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
    if why_not is None:
        started = time.monotonic()
        try:
            _restore_into_new_container(config, t, volume, checkpoint)
        except (NodeError, subprocess.CalledProcessError, OSError) as e:
            sessions.docker("rm", "--force", name, check=False)
            why_not = f"criu could not restore it ({str(e).strip().splitlines()[-1][:300]})"
        else:
            _settle(volume)
            return log(f"{opened}\n{tenant_id}: restored from {checkpoint} in {time.monotonic() - started:.1f} s")
    _keep_aside(volume.checkpoints, checkpoint)
    return _cold_start(config, volume, tenant_id, f"checkpoint {checkpoint} not restorable: {why_not}", opened)


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
    """A checkpoint that failed to restore is kept (renamed), for an operator to look at."""
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
        here = sessions.state(tid) or "-"
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
