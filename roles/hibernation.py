"""hibernation: CRIU checkpoints of idle sessions, into the tenant's encrypted volume, restorable
on any node (`tos-session hibernate | restore`), and the idle policy that drives them.

What makes restore work under user namespaces is a CRIU action script (templates/hibernation/
tos-criu-hook.j2): before criu restores, it makes the checkpoint images readable by criu's root
task both before and after its user namespace maps exist (owner root, group the mapped root);
tos-session removes containerd's extracted copy once the session runs. Checkpoints pass through
containerd's content store and /tmp on their way: both are kept in RAM, never on the node's disk.
The runtime's versions are held (apt-mark hold) at the set the lab tests proved; the audit fails
when they drift from `hibernation_tested_versions`.
"""

import json
from io import StringIO

from pydantic import model_validator
from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

from toskit import operations
from toskit.defaults import ALL_DEFAULTS
from toskit.facts import HeldPackages, TmpfsMounted
from toskit.schema import RoleData
from toskit.schema.model import refuse_key
from toskit.schema.types import DurationText, NonEmpty, PackageName, Switch, Version
from toskit.templating import TEMPLATES

# The data key listing this role's packages (deploy.py installs them all in one transaction).
PACKAGES_KEY = "hibernation_packages"

class Data(RoleData):
    # CRIU checkpoints and restores the session's processes (runc runs it).
    hibernation_packages: NonEmpty(PackageName) = ["criu"]
    # A session with no client is paused at once and hibernated after this long (per tenant:
    # 'hibernate_after' in its tenants entry). Units: s, m, h.
    hibernation_after: DurationText() = "30m"
    # Switch: the idle policy (a systemd timer) on every node. Off, sessions are paused and
    # hibernated only by hand (`tos-session pause | hibernate`).
    hibernation_idle_policy: Switch = True
    # How often the idle policy looks at the sessions.
    hibernation_policy_interval: DurationText(86400) = "30s"
    # Hold the runtime's packages (apt-mark hold): a checkpoint restores only with a compatible
    # criu/runc, so they change on purpose, after the hibernation lab tests, never by an upgrade.
    hibernation_hold_runtime: Switch = True
    hibernation_runtime_packages: NonEmpty(PackageName) = ["criu", "runc", "containerd", "docker.io", "docker-cli"]
    # The versions the lab's hibernation tests passed with (Debian 13); the audit compares.
    hibernation_tested_versions: dict[PackageName, Version] = {
        "criu": "4.1.1", "runc": "1.1.15", "containerd": "1.7.24", "docker": "26.1.5"}

    @model_validator(mode="after")
    def _runtime_allows_checkpoints(self):
        # Read where a node's whole schema holds the runtime's key too (toskit.schema.host_model).
        experimental = getattr(self, "docker_experimental", True)
        if experimental is not True:
            refuse_key("docker_experimental", experimental, "is off, and Docker's checkpoints (hibernation) need it",
                       "set docker_experimental = True for the nodes (a documented CIS 2.18 exception), "
                       "or take roles.hibernation out of ROLES_BY_GROUP")
        return self


DEFAULTS = Data.defaults()

CRIU_CONFIG = "/etc/criu/runc.conf"
CRIU_HOOK = "/usr/local/sbin/tos-criu-hook"
# criu truncates it at every run: the last run's log. In RAM: it names the session's processes and files.
CRIU_LOG = "/run/tos-criu.log"
CONTENT_STORE = "/var/lib/containerd/io.containerd.content.v1.content"
CONTENT_STORE_UNIT = "var-lib-containerd-io.containerd.content.v1.content.mount"
# What the CRIU hook and tos-session must agree on, defined here only: rendered into the hook, and
# written to /etc/tos/hibernation.json for tos-session (which imports nothing of the operator's side).
SHARED_WITH_TOOL = {
    "criu_staged": "/run/tos/criu-staged",  # the hook's records of the images containerd unpacked for a restore
    "criu_log": CRIU_LOG,  # tos-session reads criu's own time of a dump or restore from it
}


def _template(name: str, dest: str, mode: str = "644", src: str | None = None, **values):
    src = src or dest.rsplit("/", 1)[1]
    return operations.template(name=name, src=str(TEMPLATES / "hibernation" / f"{src}.j2"),
                               dest=dest, mode=mode, **values)


def hibernation_json() -> str:
    """/etc/tos/hibernation.json: what tos-session shares with the CRIU hook."""
    return json.dumps(SHARED_WITH_TOOL, indent=2, sort_keys=True) + "\n"


# Reads the runtime's docker_subid_start (the mapped root uid) besides its own keys.
@deploy("TOS hibernation", data_defaults=ALL_DEFAULTS)
def hibernation():
    Data.check(host.name, host.data)
    apt.packages(name="Install CRIU", packages=host.data.hibernation_packages, no_recommends=True)
    if host.data.hibernation_hold_runtime:
        held = host.get_fact(HeldPackages)
        missing = [p for p in host.data.hibernation_runtime_packages if p not in held]
        if missing:
            server.shell(name=f"Hold the runtime at its tested versions: {' '.join(missing)}",
                         commands=[f"apt-mark hold {' '.join(missing)}"])

    files.directory(name="/etc/criu", path="/etc/criu", user="root", group="root", mode="755")
    _template("criu options for runc: log file, action script", CRIU_CONFIG, log_file=CRIU_LOG, hook=CRIU_HOOK)
    # Where earlier deploys had criu log, on the node's disk: the names of a session's processes and files.
    files.file(name="No criu log on disk", path="/var/log/tos-criu.log", present=False)
    _template("CRIU action script: images readable by criu's root task before and after its maps", CRIU_HOOK,
              mode="755", **SHARED_WITH_TOOL)
    operations.put(name="Hibernation settings of tos-session", src=StringIO(hibernation_json()),
                   dest="/etc/tos/hibernation.json", mode="644")

    # Tenant memory passes through here during checkpoint and restore: RAM, not the node's disk.
    # (/tmp, where containerd unpacks a restore, is a tmpfs on Debian 13; the audit checks it.)
    unit = _template("containerd's content store in RAM", f"/etc/systemd/system/{CONTENT_STORE_UNIT}",
                     src="containerd-content-tmpfs.mount", where=CONTENT_STORE)
    systemd.daemon_reload(name="Load the content store's mount", _if=unit.did_change)
    mounted = host.get_fact(TmpfsMounted, path=CONTENT_STORE)
    systemd.service(name="Mount containerd's content store in RAM", service=CONTENT_STORE_UNIT,
                    running=True, enabled=True)
    if not mounted:
        # containerd creates its content folders when it starts: start it again on the tmpfs.
        systemd.service(name="Restart containerd on its RAM content store", service="containerd.service",
                        restarted=True)

    service = _template("Idle policy service", "/etc/systemd/system/tos-session-policy.service")
    timer = _template("Idle policy timer", "/etc/systemd/system/tos-session-policy.timer")
    systemd.daemon_reload(name="Load the idle policy units", _if=any_changed(service, timer))
    systemd.service(name=f"Idle policy timer {'on' if host.data.hibernation_idle_policy else 'off'}",
                    service="tos-session-policy.timer", running=host.data.hibernation_idle_policy,
                    enabled=host.data.hibernation_idle_policy)
