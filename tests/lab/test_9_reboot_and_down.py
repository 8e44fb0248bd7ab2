"""Last: Vault restarted and a node rebooted come back as they were; `lab down` leaves nothing
running.

A reboot is a node's business: its Vault credential lived in RAM (the deploy enrols it again,
its only change) and its tenant firewall must be in place before Docker starts a session. One
node shows it; rebooting all three hosts cost ~5 more minutes under TCG and showed nothing more.
"""

import re
import subprocess
import time

from labtools import CONFIG, cycle, lab, lab_processes, on

from toskit.lab.vault import LabVault


def boot_id(host: str) -> str | None:
    """None while the guest does not answer (going down, booting)."""
    try:
        proc = on(host, "cat /proc/sys/kernel/random/boot_id", check=False, timeout=30)
    except subprocess.TimeoutExpired:
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def reboot(host: str, timeout: float = 1200) -> None:
    """Reboots the guest from inside (qemu keeps running) and waits until it answers with a new
    boot and Docker is up (~25 s after sshd under TCG)."""
    before = boot_id(host)
    on(host, "systemd-run --on-active=1 systemctl reboot")  # returns before the connection drops
    deadline = time.monotonic() + timeout
    while boot_id(host) in (None, before):
        assert time.monotonic() < deadline, f"{host} did not come back within {timeout} s"
        time.sleep(5)
    on(host, "timeout 600 sh -c 'until systemctl -q is-active docker.service; do sleep 1; done'", timeout=660)


def active_since(host: str, unit: str) -> int:
    out = on(host, f"systemctl show -P ActiveEnterTimestampMonotonic {unit}").stdout.strip()
    assert out not in ("", "0"), f"{unit} is not active on {host}"
    return int(out)


def test_vault_restarted_keeps_its_data_and_unseals():
    vault = LabVault(CONFIG)
    token = (CONFIG.state_dir / "vault" / "root-token").read_text()
    assert vault.stop()
    vault.start()
    assert vault.status() == "active"
    assert (CONFIG.state_dir / "vault" / "root-token").read_text() == token
    assert "transit/" in vault.root_client().sys.list_mounted_secrets_engines()["data"]  # the deploy's, kept


def test_a_rebooted_node_is_enrolled_again_and_its_firewall_precedes_docker():
    reboot("node1")
    assert "docker.service" in on("node1", "systemctl show -P Before tos-tenant-firewall.service").stdout.split()
    assert active_since("node1", "tos-tenant-firewall.service") <= active_since("node1", "docker.service")
    (hosts, changed, passed, failed), proc = cycle("sshd or runtime or test_quotas or credential or live_firewall",
                                                   limit="node1")
    assert failed == 0, proc.stdout[-3000:]
    per_host = dict(re.findall(r"^  (\S+)\s+changed=(\d+)", proc.stdout, re.M))
    assert per_host == {"node1": "1"}, proc.stdout[-3000:]


def test_down_leaves_nothing_running():
    lab("down")
    assert lab_processes() == []
    assert CONFIG.netns not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert "labtap" not in links and "labbr0" not in links
    assert "stopped nothing" in lab("down").stdout
