"""node2 broken by hand in four ways at once: the audit names each control on node2 and no other
host, one deploy repairs them all (and, the second deploy of the other hosts, changes nothing
there), and node2's deploy after that has nothing left to do.

One break-audit-deploy round for all of them: each round costs minutes under emulation."""

import re

import pytest
from labtools import CONFIG, audit_only, cycle, on

# (control the audit must name, audit filter, how node2 is broken)
BREAKAGES = [
    ("cis-docker-2.9", "runtime", "sed -i '/userns-remap/d' /etc/docker/daemon.json && systemctl restart docker"),
    ("tos-quota-01", "test_quotas", "systemctl set-property --runtime tos-tenant-acme.slice MemoryMax=infinity"),
    ("tos-net-05", "live_firewall", "nft flush chain inet tos_tenants forward"),
    # Last, and a restart: `reload` returns before sshd, re-executing itself, listens again, and the
    # next connection was reset. ssh.service is Type=notify, so restart returns once sshd listens.
    ("sshd-27", "sshd",
     "sed -i 's/^PasswordAuthentication no/PasswordAuthentication yes/' /etc/ssh/sshd_config && systemctl restart ssh"),
]
AUDIT_FILTER = " or ".join(f for _, f, _ in BREAKAGES)


@pytest.fixture(scope="module")
def broken_audit():
    """The audit's output with node2 broken in every way above (the deploy has not run yet)."""
    on("node2", " && ".join(breakage for _, _, breakage in BREAKAGES))  # one connection
    audit = audit_only(AUDIT_FILTER)
    assert audit.returncode != 0, audit.stdout[-3000:]
    return audit.stdout


@pytest.mark.parametrize("control", [c for c, _, _ in BREAKAGES])
def test_the_audit_names_the_broken_control_on_node2(broken_audit, control):
    assert f"FAILED control={control} host=node2" in broken_audit, broken_audit[-3000:]


def test_the_audit_blames_no_other_host(broken_audit):
    assert "host=node1" not in broken_audit and "host=storage" not in broken_audit, broken_audit[-3000:]


def test_one_deploy_repairs_them_all_and_the_next_changes_nothing(broken_audit):
    (hosts, changed, passed, failed), proc = cycle(AUDIT_FILTER)
    assert failed == 0, proc.stdout[-3000:]
    per_host = dict(re.findall(r"^  (\S+)\s+changed=(\d+)", proc.stdout, re.M))
    assert int(per_host.pop("node2")) >= len(BREAKAGES), proc.stdout
    # The other hosts' second deploy since test_1's first: nothing to do.
    assert set(per_host.values()) == {"0"} and len(per_host) == len(CONFIG.hosts) - 1, proc.stdout
    # ...and node2's repair holds as state: its next deploy has nothing left to do.
    (hosts, changed, passed, failed), proc = cycle("credential", limit="node2")  # the deploy is what this checks
    assert (hosts, changed, failed) == (1, 0, 0), proc.stdout[-3000:]
