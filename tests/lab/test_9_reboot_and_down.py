"""down and up keep the hosts and Vault; down leaves nothing running."""

import re
import subprocess

from labtools import CONFIG, cycle, lab, lab_processes


def test_down_then_up_keeps_the_hosts_and_vault():
    token = (CONFIG.state_dir / "vault" / "root-token").read_text()
    lab("down")
    assert lab_processes() == []
    lab("up", timeout=1200)
    assert (CONFIG.state_dir / "vault" / "root-token").read_text() == token
    assert "openbao        active" in lab("status").stdout
    # A rebooted node lost its Vault credential with its RAM: the deploy enrols it again, the only
    # change. (That an enrolled node's next deploy changes nothing, test_1 and test_2 show.)
    (hosts, changed, passed, failed), proc = cycle("sshd or runtime or test_quotas or credential or live_firewall")
    assert failed == 0, proc.stdout[-3000:]
    per_host = dict(re.findall(r"^  (\S+)\s+changed=(\d+)", proc.stdout, re.M))
    assert per_host == {h.name: "1" if h.group == "nodes" else "0" for h in CONFIG.hosts}, proc.stdout[-3000:]


def test_down_leaves_nothing_running():
    lab("down")
    assert lab_processes() == []
    assert CONFIG.netns not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert "labtap" not in links and "labbr0" not in links
    assert "stopped nothing" in lab("down").stdout
