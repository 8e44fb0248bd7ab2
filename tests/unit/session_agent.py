"""The real session agent (toskit/node/session_image/tos-session-agent), run on this machine for unit
tests: its channel on a loopback port of its own, its home in a temporary folder."""

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request

from toskit.session_image import NODE_PROGRAMS

AGENT = NODE_PROGRAMS / "session_image" / "tos-session-agent"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_agent(tenant: str, home):
    """The agent of `tenant`, up: yields its channel's port."""
    port = free_port()
    agent = subprocess.Popen([sys.executable, str(AGENT), "--tenant", tenant, "--port", str(port)],
                             env={**os.environ, "HOME": str(home), "TOS_GATE_LIB": str(NODE_PROGRAMS)})
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as answer:
                    assert answer.read().decode().strip() == f"tos-session {tenant}"
                    break
            except OSError:
                assert time.monotonic() < deadline and agent.poll() is None, "the agent did not come up"
                time.sleep(0.1)
        yield port
    finally:
        agent.kill()
        agent.wait()
