"""The lab, end to end, as a new user meets it: up, deploy, audit, re-deploy, break, repair, down.

These tests run in order against one real lab (qemu guests, OpenBao, the package cache).
They need root, qemu and mmdebstrap; `.ci/run` installs them.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from toskit.lab.config import GUEST_APT_CACHE, GUEST_APT_CACHE_PORT, GUEST_VAULT, GUEST_VAULT_PORT, LabConfig
from toskit.lab.vm import ssh_argv

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = re.compile(r"^lab: hosts=(\d+) changed=(\d+) audit_passed=(\d+) audit_failed=(\d+)$", re.M)
CONFIG = LabConfig.from_env()


def run(argv: list, timeout: float, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def lab(*args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "toskit.lab", *args], timeout, check)


def on(host: str, command: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(ssh_argv(CONFIG, CONFIG.host(host), command), capture_output=True, text=True,
                          timeout=120, input=stdin if stdin is not None else "")
    if check and proc.returncode != 0:
        pytest.fail(f"on {host}: {command} exited {proc.returncode}: {proc.stderr}")
    return proc


def cycle(audit_filter: str | None = None) -> tuple:
    """`make lab`'s deploy + audit; returns (hosts, changed, passed, failed) from the summary line.

    The full audit (sessions, attacks, stress) takes minutes under TCG: later cycles pass a filter.
    """
    filters = ["--audit-filter", audit_filter] if audit_filter else []
    proc = run([sys.executable, "-m", "toskit.cycle", "--inventory", "inventories/lab.py", *filters], 3000,
               check=False)
    found = SUMMARY.findall(proc.stdout)
    assert found, f"no summary line in:\n{proc.stdout[-3000:]}"
    return tuple(int(x) for x in found[-1]), proc


def lab_processes() -> list:
    """Live (non-zombie) processes that belong to this lab: qemu, OpenBao, the package cache."""
    markers = (str(CONFIG.state_dir), str(CONFIG.cache_dir / "apt-cacher-ng"))
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            status = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if status != "Z" and any(m in cmdline for m in markers):
            found.append(cmdline)
    return found


def test_lab_up_from_nothing_boots_every_host():
    lab("destroy")
    lab("up")
    status = lab("status").stdout
    for host in CONFIG.hosts:
        assert re.search(rf"^{host.name}\s+ssh ok$", status, re.M), status
    assert re.search(r"^openbao\s+active$", status, re.M), status
    assert (ROOT / "inventories" / "lab.py").exists()


def test_lab_up_again_is_the_same_lab():
    known_hosts = CONFIG.known_hosts.read_text()
    out = lab("up").stdout
    assert out.count("already up") == len(CONFIG.hosts), out
    assert CONFIG.known_hosts.read_text() == known_hosts


def test_first_deploy_then_audit_passes_on_every_host():
    (hosts, changed, passed, failed), proc = cycle()
    assert (hosts, failed) == (len(CONFIG.hosts), 0), proc.stdout[-3000:]
    assert changed > 0 and passed > 0


def test_second_deploy_changes_nothing():
    (hosts, changed, passed, failed), proc = cycle("sshd or runtime")
    assert (hosts, changed, failed) == (len(CONFIG.hosts), 0, 0), proc.stdout[-3000:]
    assert re.findall(r"changed=(\d+)", proc.stdout)[:hosts] == ["0"] * hosts


def test_guests_reach_each_other_and_the_lab_services_but_nothing_else():
    storage = next(h for h in CONFIG.hosts if h.group == "storage")
    probe = "timeout 5 bash -c 'echo > /dev/tcp/{}/{}'"
    on("node1", probe.format(storage.lab_ip, 22))
    on("node1", probe.format(GUEST_APT_CACHE, GUEST_APT_CACHE_PORT))
    # 10.0.2.2 is this machine's loopback as seen from a guest: restrict=on must refuse it,
    # even on a port where a lab service listens.
    blocked = on("node1", probe.format("10.0.2.2", CONFIG.apt_cache_port), check=False)
    assert blocked.returncode != 0
    # The lab network's namespace holds the bridge and taps and nothing that leads out.
    links = subprocess.run(["ip", "-n", CONFIG.netns, "-o", "link"], capture_output=True, text=True).stdout
    names = {line.split(":")[1].strip().split("@")[0] for line in links.splitlines()}
    assert names == {"lo", "labbr0", *(f"labtap{h.index}" for h in CONFIG.hosts)}


def test_guests_reach_vault_over_tls_1_3_with_the_lab_ca():
    ca = (CONFIG.state_dir / "ca" / "ca.pem").read_text()
    on("node1", "cat > /tmp/lab-ca.pem", stdin=ca)
    url = f"https://{GUEST_VAULT}:{GUEST_VAULT_PORT}/v1/sys/health"
    health = on("node1", f"curl -sS --cacert /tmp/lab-ca.pem {url}").stdout
    assert '"initialized":true' in health and '"sealed":false' in health
    assert on("node1", f"curl -sS --tls-max 1.2 --cacert /tmp/lab-ca.pem {url}", check=False).returncode != 0


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
    (hosts, changed, passed, failed), proc = cycle("sshd")
    assert failed == 0, proc.stdout[-3000:]


def audit_only(expression: str) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/audit",
                "--inventory=inventories/lab.py", "-k", expression], 900, check=False)


def break_audit_repair(breakage: str, audit_filter: str, control: str) -> None:
    """Breaks node2 with `breakage`; the audit must fail naming the control and node2 only, and the
    next deploy must repair it (a change on node2, then a passing audit)."""
    on("node2", breakage)
    audit = audit_only(audit_filter)
    assert f"FAILED control={control} host=node2" in audit.stdout, audit.stdout[-3000:]
    assert "host=node1" not in audit.stdout
    (hosts, changed, passed, failed), proc = cycle(audit_filter)
    assert re.search(r"node2\s+changed=[1-9]", proc.stdout) and failed == 0, proc.stdout[-3000:]


def test_audit_catches_userns_remap_removed_and_the_deploy_restores_it():
    break_audit_repair("sed -i '/userns-remap/d' /etc/docker/daemon.json && systemctl restart docker",
                       "runtime", "CIS 2.9")


def test_audit_catches_a_lifted_memory_limit_and_the_deploy_restores_it():
    break_audit_repair("systemctl set-property --runtime tos-tenant-acme.slice MemoryMax=infinity",
                       "test_quotas", "tenant-quotas")
    # ...and the repair holds as state: the next deploy has nothing left to do.
    (hosts, changed, passed, failed), proc = cycle("test_quotas")
    assert changed == 0, proc.stdout[-3000:]


def test_down_then_up_keeps_the_hosts_and_vault():
    token = (CONFIG.state_dir / "vault" / "root-token").read_text()
    lab("down")
    assert lab_processes() == []
    lab("up")
    assert (CONFIG.state_dir / "vault" / "root-token").read_text() == token
    assert "openbao        active" in lab("status").stdout
    (hosts, changed, passed, failed), proc = cycle("sshd or runtime or test_quotas")
    assert (changed, failed) == (0, 0), proc.stdout[-3000:]


def test_down_leaves_nothing_running():
    lab("down")
    assert lab_processes() == []
    assert CONFIG.netns not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert "labtap" not in links and "labbr0" not in links
    assert "stopped nothing" in lab("down").stdout
