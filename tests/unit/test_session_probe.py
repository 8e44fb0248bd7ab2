"""tos-probe, the attacks the audits run inside sessions: outcomes in the order asked, and a run of
connects tried at once (each dropped one waits out its timeout)."""

import runpy
import socket
import threading

import pytest

from toskit.session_image import NODE_PROGRAMS

PROBE = runpy.run_path(str(NODE_PROGRAMS / "session_image" / "tos-probe"))


@pytest.fixture
def listener():
    """A loopback port that answers with a banner, and one where nothing listens."""
    server = socket.create_server(("127.0.0.1", 0))
    closed = socket.create_server(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()

    def answer():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"hello")
    threading.Thread(target=answer, daemon=True).start()
    yield server.getsockname()[1], closed_port
    server.close()


def test_outcomes_come_in_the_order_asked(listener):
    open_port, closed_port = listener
    attacks = [["connect", "127.0.0.1", str(closed_port)], ["setuid"], ["connect", "127.0.0.1", str(open_port)],
               ["connect", "127.0.0.1", str(closed_port)]]
    found = list(PROBE["outcomes"](attacks))
    assert [attack for attack, _ in found] == attacks
    outcomes = [result["outcome"] for _, result in found]
    assert outcomes[0] == outcomes[3] == "ECONNREFUSED" and outcomes[2] == "allowed"
    assert found[2][1]["banner"] == "hello"


def test_a_run_of_connects_is_tried_at_once_and_other_attacks_alone(monkeypatch):
    together = threading.Barrier(3, timeout=10)  # broken (an error) unless all three wait at once
    running, overlapped = [], []

    def connect(args):
        together.wait()
        return {"outcome": "ETIMEDOUT"}

    def setuid(_):
        overlapped.append(len(running) > 1)  # itself and any other
        return {"outcome": "EPERM"}

    def tracked(attack):
        def run(args):
            running.append(attack)
            try:
                return attack(args)
            finally:
                running.remove(attack)
        return run

    monkeypatch.setitem(PROBE["ATTACKS"], "connect", tracked(connect))
    monkeypatch.setitem(PROBE["ATTACKS"], "setuid", tracked(setuid))
    attacks = [["connect", "127.0.0.1", str(port)] for port in (1, 2, 3)] + [["setuid"]]
    results = [result["outcome"] for _, result in PROBE["outcomes"](attacks)]
    assert results == ["ETIMEDOUT"] * 3 + ["EPERM"] and overlapped == [False]
