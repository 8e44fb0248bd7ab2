"""Tenants' desktop sessions on this node: docker containers with every isolation flag, inside the
tenant's slice and network, with the tenant's encrypted volume as their home."""

import json
import os
import stat
import subprocess
import time

from . import dockerapi
from .errors import NodeError
from .nodeconfig import NodeConfig
from .volumes import Volume

TENANTS_JSON = "/etc/tos/tenants.json"
SESSION_USER = "session"
AGENT_SOCKET = "/tmp/tos-agent.sock"  # in the session's own /tmp (its tmpfs)
AGENT_START_TIMEOUT = 180  # seconds; the agent answered within ~10 s on the lab under TCG


def load_tenants_file() -> dict:
    """tenants.json as the deploy wrote it (roles/sessions.py): the session image and the tenants."""
    with open(TENANTS_JSON) as f:
        return json.load(f)


def tenant(tenants_file: dict, tenant_id: str) -> dict:
    for t in tenants_file["tenants"]:
        if t["id"] == tenant_id:
            return t
    known = ", ".join(t["id"] for t in tenants_file["tenants"]) or "none"
    raise NodeError(f"unknown tenant {tenant_id!r} on this node (known: {known}); "
                       f"declare it in group_data and deploy")


def container_name(tenant_id: str) -> str:
    return f"tos-session-{tenant_id}"


def container(tenant_id: str) -> dict | None:
    """The session container's inspect document (dockerapi.container), None if there is none."""
    return dockerapi.container(container_name(tenant_id))


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise NodeError(f"docker {args[0]} failed: {proc.stderr.strip()}")
    return proc


def state(tenant_id: str) -> str | None:
    """Docker's status of the session's container (running, paused, exited, ...), None if none.
    A session frozen but not (yet) handed to Docker is still running to Docker: freezer.state tells it."""
    found = container(tenant_id)
    return found["State"]["Status"] if found else None


def run_argv(tenants_file: dict, t: dict, home: str) -> list:
    """Every isolation flag, each for a reason (CIS Docker v1.6.0 section 5 in brackets)."""
    return [
        "run", "--detach", "--name", container_name(t["id"]),
        "--hostname", f"tos-{t['id']}", "--label", f"tos.tenant={t['id']}",
        "--cgroup-parent", t["slice"],              # [5.10, 5.11, 5.28] the tenant's quotas hold
        "--network", t["network"],                  # [5.9] own network, never the host's
        "--read-only",                              # [5.12] nothing persists in the container
        "--tmpfs", "/tmp:rw,nosuid,nodev,noexec,size=64m",
        # The home is the tenant's encrypted volume: nothing of the tenant lands on this node's disk.
        "--mount", f"type=bind,source={home},target=/home/{SESSION_USER}",
        "--cap-drop", "ALL",                        # [5.3] the session needs no capability
        "--security-opt", "no-new-privileges",      # [5.25]
        "--security-opt", "apparmor=docker-default",  # [5.1]
        "--pids-limit", str(t["pids"]),             # [5.28]
        "--memory", str(t["memory"]), "--memory-swap", str(t["memory"] + t["swap"]),  # [5.10]
        "--cpus", str(t["cpu"]),                    # [5.11]
        "--restart", "no",
        "--user", SESSION_USER,                     # unprivileged inside the container too
        # [5.27] the image's health check, at the tenant's interval (tenants.json; absent: the image's)
        *(["--health-interval", f"{t['health_interval']}s"] if "health_interval" in t else []),
        tenants_file["image"], "/usr/local/bin/tos-session-agent", "--tenant", t["id"],
    ]


def has_checkpoints(tenant_id: str) -> bool:
    """True unless Docker says the container has no checkpoint (or cannot have one: checkpoints
    need the daemon's experimental mode). When in doubt, the container is kept."""
    proc = docker("checkpoint", "ls", container_name(tenant_id), check=False)
    if proc.returncode != 0:
        return "experimental" not in proc.stderr
    return len(proc.stdout.strip().splitlines()) > 1  # a header line, then one line per checkpoint


def volume(tenants_file: dict, tenant_id: str) -> Volume:
    return Volume(NodeConfig.load(), tenant(tenants_file, tenant_id))


def start(tenants_file: dict, tenant_id: str) -> str:
    t = tenant(tenants_file, tenant_id)
    current = state(tenant_id)
    if current in ("running", "paused"):
        return f"{tenant_id}: already {current}"
    # A session that died (node reboot, crash) left its container behind. With no checkpoint,
    # nothing of it survives (read-only root, RAM-only scratch): it is replaced. Checked before
    # the volume opens, so a refusal leaves the volume (and its lease) as they were.
    if current is not None and has_checkpoints(tenant_id):
        raise NodeError(f"{tenant_id}: a {current} session container with state exists; "
                        f"restore it, or run `tos-session stop {tenant_id}` to discard it")
    home = volume(tenants_file, tenant_id)
    opened = home.open()  # Vault unreachable or the volume busy elsewhere: no session, nothing changed
    if current is not None:
        docker("rm", container_name(tenant_id))
    try:
        docker(*run_argv(tenants_file, t, str(home.home)))
    except NodeError:
        home.close()
        raise
    deadline = time.monotonic() + AGENT_START_TIMEOUT
    while not agent_listening(tenant_id):
        if time.monotonic() > deadline:
            raise NodeError(f"{tenant_id}: the session agent did not come up within {AGENT_START_TIMEOUT} s "
                            f"(docker logs {container_name(tenant_id)})")
        time.sleep(0.2)
    return f"{opened}\n{tenant_id}: started"


def agent_listening(tenant_id: str) -> bool:
    """The agent's control socket exists, seen from the host through the session init's root
    (/proc/PID/root): a `docker exec` per look costs 3-6 s under emulation. lstat: a link the
    tenant put there is never followed into the host's tree."""
    found = container(tenant_id)
    pid = found["State"]["Pid"] if found else 0
    if not pid:
        return False
    try:
        return stat.S_ISSOCK(os.lstat(f"/proc/{pid}/root{AGENT_SOCKET}").st_mode)
    except OSError:
        return False


def stop(tenants_file: dict, tenant_id: str) -> str:
    """Stops the session, then closes its volume: no session left that needs it."""
    home = volume(tenants_file, tenant_id)
    if state(tenant_id) is None:
        return f"{tenant_id}: no session\n{home.close()}"
    docker("rm", "--force", container_name(tenant_id))
    return f"{tenant_id}: stopped\n{home.close()}"


def close_volume(tenants_file: dict, tenant_id: str) -> str:
    if state(tenant_id) is not None:
        raise NodeError(f"{tenant_id}: a session container uses the volume; `tos-session stop {tenant_id}` "
                        f"stops it and closes the volume")
    return volume(tenants_file, tenant_id).close()


def exec_in(tenants_file: dict, tenant_id: str, command: list) -> int:
    tenant(tenants_file, tenant_id)
    if state(tenant_id) != "running":
        raise NodeError(f"{tenant_id}: no running session")
    return subprocess.run(["docker", "exec", "--user", SESSION_USER, container_name(tenant_id), *command]).returncode


