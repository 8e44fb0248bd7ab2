"""Audit targets from any pyinfra inventory: the same hosts, groups, data and ssh settings the deploy uses.

The audits (tests/audit) run through testinfra's ssh backend with an ssh_config written from the
inventory, so `--inventory inventories/production.py` audits production exactly as it was deployed.
"""

from dataclasses import dataclass
from pathlib import Path

import testinfra
from pyinfra.api import Config, Inventory, State
from pyinfra.context import ctx_state
from pyinfra_cli.inventory import make_inventory

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class AuditTarget:
    name: str
    groups: list
    data: dict  # role defaults, overridden by group_data and the inventory, as in a deploy

    @property
    def address(self) -> str:
        return self.data.get("ssh_hostname") or self.name

    @property
    def port(self) -> int:
        return int(self.data.get("ssh_port") or 22)


def load_inventory(path: str, defaults: dict) -> list:
    """Reads a pyinfra inventory file (with group_data/) into audit targets."""
    if not Path(path).exists():
        raise FileNotFoundError(f"inventory {path} does not exist "
                                "(for the lab run `make lab` or `python -m toskit.lab up` first)")
    with ctx_state.use(State(Inventory(([], {})), Config())):
        inventory = make_inventory(str(path), cwd=str(PROJECT_ROOT))
    return [AuditTarget(h.name, list(h.groups), {**defaults, **h.data.dict()}) for h in inventory]


def ssh_config(targets: list) -> str:
    """An ssh_config with one stanza per target, mirroring pyinfra's ssh connector data."""
    lines = []
    for t in targets:
        d = t.data
        lines += [f"Host {t.name}", f"  HostName {t.address}", f"  Port {t.port}",
                  "  BatchMode yes", "  ConnectTimeout 10", "  LogLevel ERROR",
                  # Never trust on first use: the host must already be known.
                  f"  StrictHostKeyChecking {d.get('ssh_strict_host_key_checking') or 'yes'}"]
        if d.get("ssh_user"):
            lines.append(f"  User {d['ssh_user']}")
        if d.get("ssh_key"):
            lines += [f"  IdentityFile {d['ssh_key']}", "  IdentitiesOnly yes"]
        if d.get("ssh_known_hosts_file"):
            lines.append(f"  UserKnownHostsFile {d['ssh_known_hosts_file']}")
        lines.append("")
    return "\n".join(lines)


def testinfra_host(target: AuditTarget, ssh_config_path: Path, control_dir: Path):
    return testinfra.get_host(
        f"ssh://{target.name}", ssh_config=str(ssh_config_path),
        controlpath=str(control_dir / f"{target.name}.ctl"), controlpersist=120,
        sudo=bool(target.data.get("_sudo")),
    )
