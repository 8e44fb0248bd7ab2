"""Hosts broken by hand: the audit names the control and the host, the next deploy repairs it."""

import re
import sys

from labtools import break_audit_repair, cycle, on, run


def test_audit_catches_a_weakened_sshd_and_the_deploy_repairs_it():
    on("node2", "sed -i 's/^PasswordAuthentication no/PasswordAuthentication yes/' /etc/ssh/sshd_config"
                " && systemctl reload ssh")
    (hosts, changed, passed, failed), proc = cycle("sshd")
    # The deploy ran first and put the hardened config back: one change, on node2 only.
    assert re.search(r"node2\s+changed=[1-9]", proc.stdout) and changed >= 1
    assert failed == 0, proc.stdout[-3000:]
    # Weaken it again and audit alone: the failure names the control and the host.
    on("node2", "sed -i 's/^PasswordAuthentication no/PasswordAuthentication yes/' /etc/ssh/sshd_config"
                " && systemctl reload ssh")
    audit = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/audit",
                 "--inventory=inventories/lab.py", "-k", "sshd"], 600, check=False)
    assert audit.returncode != 0
    assert "FAILED control=sshd-27 host=node2" in audit.stdout, audit.stdout[-3000:]
    assert "host=node1" not in audit.stdout and "host=storage" not in audit.stdout
    # The next test's deploy repairs it again (and its summary counts that change on node2).


def test_audit_catches_userns_remap_removed_and_the_deploy_restores_it():
    break_audit_repair("sed -i '/userns-remap/d' /etc/docker/daemon.json && systemctl restart docker",
                       "runtime", "CIS 2.9")


def test_audit_catches_a_lifted_memory_limit_and_the_deploy_restores_it():
    break_audit_repair("systemctl set-property --runtime tos-tenant-acme.slice MemoryMax=infinity",
                       "test_quotas", "tenant-quotas")
    # ...and the repair holds as state: the next deploy has nothing left to do.
    (hosts, changed, passed, failed), proc = cycle("credential")  # the deploy is what this checks
    assert changed == 0, proc.stdout[-3000:]
