"""runtime: Debian's Docker, hardened to the CIS Docker Benchmark v1.6.0, on every node.

Containers' root is remapped to an unprivileged uid range (user namespaces), the daemon has no
TCP socket, and every change to the runtime's binaries, sockets and config is audited (auditd).
Every default is documented here; override any of them in group_data/ or the inventory.
"""

from io import StringIO
from typing import Annotated

from pydantic import model_validator
from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

from toskit import operations
from toskit.defaults import ALL_DEFAULTS
from toskit.schema import RoleData
from toskit.schema.model import refuse_key
from toskit.schema.types import AccountName, LogSize, NonEmpty, PackageName, Switch, including, whole
from toskit.templating import TEMPLATES

# The data key listing this role's packages (deploy.py installs them all in one transaction).
PACKAGES_KEY = "docker_packages"
SUB_ID_MIN = 100000  # Debian's SUB_UID_MIN: below it are real users' uids


class Data(RoleData):
    # Packages: trixie splits the docker command into docker-cli. AppArmor confines containers
    # (CIS 5.1; without apparmor_parser every `docker run` fails); auditd records 1.1.x events.
    docker_packages: Annotated[NonEmpty(PackageName), including("docker.io", "apparmor", "auditd")] = [
        "docker.io", "docker-cli", "apparmor", "auditd"]
    # The host user whose subordinate id range containers' users map into [CIS 2.9]. The deploy
    # creates it: never an account the system already has.
    docker_userns_user: AccountName = "dockremap"
    # First host uid/gid of that range, and its size: container uid 0 is host uid 100000. The range
    # starts at or above 100000 (Debian's SUB_UID_MIN), above every real user's uid.
    docker_subid_start: whole(SUB_ID_MIN, 2**32 - 2 * 65536) = 100000
    docker_subid_count: whole(65536, 2**31) = 65536
    # Container logs kept on the node per container: file size and file count [CIS 2.13].
    docker_log_max_size: LogSize = "10m"
    docker_log_max_files: whole(1, 100) = 3
    # Default open-files limit of containers, soft and hard [CIS 2.8].
    docker_nofile_soft: whole(1, 1 << 20) = 1024
    docker_nofile_hard: whole(1, 1 << 20) = 4096
    # Exception switch [CIS 2.18]: experimental daemon features (CRIU checkpoints need them).
    # Off by default; when on, the audit reports it as a documented exception, not a pass.
    docker_experimental: Switch = False
    # [CIS 1.1.5] auditd watches every write to /var/lib/docker. dockerd's own writes there (each
    # file of every image layer and container) flooded the log: over 8 MB of it, and a 3x slower
    # import, per 26 MB image on a lab node. Off: those are left out, while a write by any other
    # program is still recorded. On: every write, dockerd's included.
    docker_audit_daemon_writes: Switch = False

    @model_validator(mode="after")
    def _ranges_fit(self):
        if self.docker_subid_start + self.docker_subid_count > 2**32 - 1:
            refuse_key("docker_subid_count", self.docker_subid_count, "runs past the last uid (2^32 - 2)",
                       "lower docker_subid_count or docker_subid_start")
        if self.docker_nofile_soft > self.docker_nofile_hard:
            refuse_key("docker_nofile_soft", self.docker_nofile_soft, "is above docker_nofile_hard",
                       "raise docker_nofile_hard or lower docker_nofile_soft")
        return self


DEFAULTS = Data.defaults()
# The daemon whose writes to its own data docker_audit_daemon_writes covers.
DOCKERD = "/usr/sbin/dockerd"
DOCKER_DATA = "/var/lib/docker"

DAEMON_JSON = "/etc/docker/daemon.json"
AUDIT_RULES = "/etc/audit/rules.d/tos-docker.rules"
# Watches on paths containerd creates under /run: loaded once containerd has started. In the
# boot-time rules a missing path fails audit-rules.service, and auditd (which requires it) with it.
AUDIT_RUNTIME_RULES = "/etc/audit/tos-docker-runtime.rules"
AUDIT_RUNTIME_WATCHES = [
    ("1.1.4", "/run/containerd"),
    ("1.1.8", "/run/containerd/containerd.sock"),
]
# [CIS 1.1.x] what auditd watches for writes and attribute changes (Debian's paths).
AUDIT_BOOT_WATCHES = [
    ("1.1.3", "/usr/sbin/dockerd"),
    ("1.1.5", "/var/lib/docker"),
    ("1.1.6", "/etc/docker"),
    ("1.1.7", "/usr/lib/systemd/system/docker.service"),
    ("1.1.9", "/usr/lib/systemd/system/docker.socket"),
    ("1.1.10", "/etc/default/docker"),
    ("1.1.11", DAEMON_JSON),
    ("1.1.12", "/etc/containerd/config.toml"),
    ("1.1.14", "/usr/bin/containerd"),
    ("1.1.17", "/usr/bin/containerd-shim-runc-v2"),
    ("1.1.18", "/usr/sbin/runc"),
]
AUDIT_WATCHES = AUDIT_BOOT_WATCHES + AUDIT_RUNTIME_WATCHES


@deploy("TOS runtime", data_defaults=ALL_DEFAULTS)
def runtime():
    Data.check(host.name, host.data)
    apt.packages(name="Install Docker, AppArmor and auditd", packages=host.data.docker_packages,
                 no_recommends=True)

    user = host.data.docker_userns_user
    remap_user = operations.system_account(user, "Host user that containers' users map to [CIS 2.9]")
    subid = f"{user}:{host.data.docker_subid_start}:{host.data.docker_subid_count}"
    subids = [files.line(name=f"Subordinate id range in {path} [CIS 2.9]", path=path,
                         line=f"^{user}:", replace=subid)
              for path in ("/etc/subuid", "/etc/subgid")]

    files.directory(name="/etc/docker root-owned, 755 [CIS 3.5, 3.6]", path="/etc/docker",
                    user="root", group="root", mode="755")
    daemon_json = operations.template(
        name="Hardened daemon.json, root-owned 644 [CIS 2.x, 3.17, 3.18]",
        src=str(TEMPLATES / "daemon.json.j2"), dest=DAEMON_JSON,
        mode="644",
    )
    # An invalid daemon.json stops the deploy here, before dockerd is restarted with it.
    server.shell(name="Check daemon.json", commands=[f"dockerd --validate --config-file {DAEMON_JSON}"],
                 _if=daemon_json.did_change)
    systemd.service(name="Run Docker", service="docker.service", running=True, enabled=True)
    systemd.service(name="Restart Docker for its new config", service="docker.service", restarted=True,
                    _if=any_changed(*[op for op in (daemon_json, remap_user, *subids) if op]))

    # A process may be traced only by its ancestors or by holders of CAP_SYS_PTRACE (CRIU, as
    # root on the host): a session cannot attach to the other processes of its own container.
    server.sysctl(name="Restrict ptrace to ancestors (yama scope 1)", key="kernel.yama.ptrace_scope",
                  value=1, persist=True, persist_file="/etc/sysctl.d/60-tos-runtime.conf")

    rule_files = [
        operations.template(
            name=f"auditd watches the runtime [CIS 1.1.x]: {path}",
            src=str(TEMPLATES / "audit-docker.rules.j2"), dest=path,
            mode="640", audit_watches=watches,
            skip_daemon_writes=None if path == AUDIT_RUNTIME_RULES or host.data.docker_audit_daemon_writes
            else (DOCKER_DATA, DOCKERD),
        )
        for path, watches in ((AUDIT_RULES, AUDIT_BOOT_WATCHES), (AUDIT_RUNTIME_RULES, AUDIT_RUNTIME_WATCHES))
    ]
    drop_in = operations.put(
        name="Load containerd's audit watches whenever it starts",
        src=StringIO(f"[Service]\nExecStartPost=-/usr/sbin/auditctl -R {AUDIT_RUNTIME_RULES}\n"),
        dest="/etc/systemd/system/containerd.service.d/tos-audit.conf",
        mode="644",
    )
    systemd.daemon_reload(name="Load containerd's drop-in", _if=drop_in.did_change)
    systemd.service(name="Run auditd", service="auditd.service", running=True, enabled=True)
    server.shell(name="Load the audit rules",
                 commands=[f"augenrules --load && auditctl -R {AUDIT_RUNTIME_RULES}"],
                 _if=any_changed(*rule_files))
