"""Last (the `last` stage): Vault restarted comes back as it was; `lab down` leaves nothing running.
(A rebooted node: test_5, on the rebuilt node2.)"""

import subprocess

import pytest
from labtools import CONFIG, lab, lab_processes

from toskit.lab.vault import LabVault

pytestmark = pytest.mark.last


def test_vault_restarted_keeps_its_data_and_unseals():
    vault = LabVault(CONFIG)
    token = (CONFIG.state_dir / "vault" / "root-token").read_text()
    assert vault.stop()
    vault.start()
    assert vault.status() == "active"
    assert (CONFIG.state_dir / "vault" / "root-token").read_text() == token
    assert "transit/" in vault.root_client().sys.list_mounted_secrets_engines()["data"]  # the deploy's, kept


def test_down_leaves_nothing_running():
    lab("down")
    assert lab_processes() == []
    assert CONFIG.netns not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert "labtap" not in links and "labbr0" not in links
    assert "stopped nothing" in lab("down").stdout
