"""Audit targets from any pyinfra inventory: the same hosts, groups, data and ssh settings the deploy uses.

The audits (tests/audit) run through testinfra's ssh backend with an ssh_config written from the
inventory, so `--inventory inventories/production.py` audits production exactly as it was deployed.
"""

from pathlib import Path

import testinfra

from toskit.inventory import AuditTarget


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
