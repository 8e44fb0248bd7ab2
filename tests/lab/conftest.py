"""Fixtures shared by the lab test files (they run in name order against one lab)."""

import secrets
import subprocess
import sys

import pytest
from labtools import PYINFRA, ROOT, on, session_write


@pytest.fixture(scope="session")
def node2_rebuild(tmp_path_factory):
    """Writes a marker into acme's volume on node1, then destroys node2 and rebuilds it from
    nothing (lab + deploy) in the background, while the node1-only tests run (test_3, test_4).
    Yields (marker, wait): wait() joins the rebuild (test_5)."""
    on("node1", "tos-session start acme")
    marker = f"TOSKEEP{secrets.token_hex(8)}"
    session_write("node1", "acme", "/home/session/keep", marker)
    old_identity = on("node2", "cat /etc/ssh/ssh_host_ed25519_key.pub").stdout
    log = tmp_path_factory.mktemp("rebuild") / "rebuild.log"
    with open(log, "w") as out:
        rebuild = subprocess.Popen(
            f"{sys.executable} -m toskit.lab rebuild node2 && {PYINFRA} -y inventories/lab.py deploy.py --limit node2",
            shell=True, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def wait():
        code = rebuild.wait(timeout=1800)
        assert code == 0, log.read_text()[-4000:]
        assert on("node2", "cat /etc/ssh/ssh_host_ed25519_key.pub").stdout != old_identity  # a new machine
    yield marker, wait
    rebuild.wait(timeout=1800)
