"""tos-nginx-reload, nginx.service's ExecReload: `systemctl reload nginx` returns once the workers from
before the reload no longer accept. Run against real processes titled as nginx titles them: a stand-in
master that, on SIGHUP, starts a new worker and retires the old one the way nginx does."""

import importlib.machinery
import importlib.util
import signal
import subprocess
import time
from pathlib import Path

import pytest

from toskit.nginx import RELOAD_TOOL_SOURCE

# On SIGHUP, after a delay like a slow reload's: a new worker, then the old one told to quit.
MASTER = """
worker() { exec -a 'nginx: worker process' sleep 60; }
worker & old=$!
(exec -a 'nginx: worker process is shutting down' sleep 60) &
(exec -a 'nginx: cache manager process' sleep 60) &
retire() { sleep 0.5; worker & kill $old; }
trap retire HUP
while :; do sleep 0.1; done
"""


def load_tool():
    loader = importlib.machinery.SourceFileLoader("tos_nginx_reload", str(RELOAD_TOOL_SOURCE))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("tos_nginx_reload", loader))
    loader.exec_module(module)
    return module


def children(pid: int) -> list:
    return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()


@pytest.fixture
def master():
    # A shell cannot trap a signal ignored when it starts (as under nohup): give it SIGHUP's default.
    process = subprocess.Popen(["bash", "-c", MASTER], preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))
    deadline = time.monotonic() + 10
    while len(children(process.pid)) < 4:  # three titled children and the loop's sleep
        assert time.monotonic() < deadline
        time.sleep(0.02)
    yield process
    subprocess.run(["pkill", "-P", str(process.pid)])
    process.kill()
    process.wait()


def test_only_workers_that_still_accept_are_counted(master):
    tool = load_tool()
    (pid, _started), = tool.accepting_workers(str(master.pid))
    assert Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"nginx: worker process\0")
    assert tool.accepting_workers("999999999") == set()  # no such master: nothing to wait for


def test_a_reload_returns_once_the_old_worker_no_longer_accepts(master):
    tool = load_tool()
    before = tool.accepting_workers(str(master.pid))
    started = time.monotonic()
    assert tool.reload(str(master.pid)) == 0
    assert time.monotonic() - started >= 0.5  # it waited for the slow reload...
    after = tool.accepting_workers(str(master.pid))
    assert after and not after & before       # ...until only the new worker accepts


def test_a_reload_nginx_did_not_take_fails_and_says_where_to_look(master, monkeypatch, capsys):
    tool = load_tool()
    monkeypatch.setattr(tool, "WAIT", 0.3)
    master.send_signal(signal.SIGSTOP)  # a master that does not act on the signal
    try:
        assert tool.reload(str(master.pid)) == 1
    finally:
        master.send_signal(signal.SIGCONT)
    assert "journalctl -u nginx" in capsys.readouterr().err
