"""tos-session's Docker API client against a real HTTP server on a unix socket, answering as
dockerd does (the lab's tests drive the real dockerd)."""

import json
import socketserver
import threading
from http.server import BaseHTTPRequestHandler

import pytest

from toskit.node.tosnode import dockerapi
from toskit.node.tosnode.errors import NodeError

CONTAINERS = {"tos-session-acme": {"Id": "ab" * 32, "State": {"Status": "running", "Pid": 4242}}}


class FakeDockerd(BaseHTTPRequestHandler):
    def _answer(self, status: int, body: dict | None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        name = self.path.removeprefix("/containers/").removesuffix("/json")
        if name in CONTAINERS:
            self._answer(200, CONTAINERS[name])
        else:
            self._answer(404, {"message": f"No such container: {name}"})

    def do_POST(self):
        if self.path.endswith("/unpause"):
            self._answer(409, {"message": "Container is not paused"})
        else:
            self._answer(204, None)

    def address_string(self):
        return "unix"

    def log_message(self, *args):
        pass


@pytest.fixture
def dockerd(tmp_path, monkeypatch):
    path = tmp_path / "docker.sock"
    server = socketserver.ThreadingUnixStreamServer(str(path), FakeDockerd)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(dockerapi, "SOCKET", str(path))
    yield path
    server.shutdown()
    server.server_close()


def test_a_container_is_read_in_one_request(dockerd):
    assert dockerapi.container("tos-session-acme")["State"] == {"Status": "running", "Pid": 4242}


def test_no_such_container_is_none(dockerd):
    assert dockerapi.container("tos-session-beta") is None


def test_an_empty_answer_is_none_and_a_refusal_names_the_request(dockerd):
    assert dockerapi.call("POST", "/containers/tos-session-acme/pause") is None
    with pytest.raises(NodeError, match=r"POST /containers/tos-session-acme/unpause failed: 409 .*not paused"):
        dockerapi.call("POST", "/containers/tos-session-acme/unpause")


def test_a_dockerd_that_does_not_answer_is_an_error_not_no_container(tmp_path, monkeypatch):
    monkeypatch.setattr(dockerapi, "SOCKET", str(tmp_path / "absent.sock"))
    with pytest.raises(NodeError, match=r"dockerd does not answer .*systemctl status docker"):
        dockerapi.container("tos-session-acme")


def test_a_name_is_one_path_segment(dockerd):
    assert dockerapi.container("tos session/acme") is None  # asked for as one (unknown) name, not refused


def test_the_session_state_comes_from_the_api_and_a_frozen_cgroup_makes_it_paused(dockerd, tmp_path, monkeypatch):
    from toskit.node.tosnode import freezer, sessions
    assert (sessions.state("acme"), sessions.state("beta")) == ("running", None)
    cgroup = tmp_path / "tos-tenant-acme.slice" / "docker-ab.scope"
    cgroup.mkdir(parents=True)
    (cgroup.parent / "cgroup.freeze").write_text("0\n")
    seen = []
    monkeypatch.setattr(freezer, "cgroup_of", lambda tenant, pid=None: seen.append(pid) or cgroup)
    (cgroup / "cgroup.freeze").write_text("0\n")
    assert freezer.state("acme") == "running" and seen == [4242]  # the pid from the same answer
    (cgroup.parent / "cgroup.freeze").write_text("1\n")  # a hand-over to Docker cut short
    assert freezer.state("acme") == "paused"
    (cgroup.parent / "cgroup.freeze").write_text("0\n")
    (cgroup / "cgroup.freeze").write_text("1\n")
    assert freezer.state("acme") == "paused" and freezer.state("beta") is None
    # `tos-session list` says so too, as `status` does.
    from toskit.node.tosnode.cli import list_sessions
    assert list_sessions({"tenants": [{"id": "acme"}, {"id": "beta"}]}).splitlines()[1:] == [
        "acme           paused", "beta           -"]
