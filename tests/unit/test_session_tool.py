"""The host-side session tool's docker command line carries every isolation flag."""

import pytest

from roles.sessions import tenants_json
from toskit.tenants import parse_tenants
from toskit.defaults import ALL_DEFAULTS

from toskit.node.tosnode import sessions as tool
from toskit.node.tosnode.errors import NodeError


@pytest.fixture
def tenants_file():
    import json
    tenants = parse_tenants("n1", [{"id": "acme"}, {"id": "beta", "health_interval": "5s"}],
                            ALL_DEFAULTS["tenant_quota_defaults"])
    return json.loads(tenants_json(tenants, "tos-session:abc", 1800, health_interval=30))


def test_session_runs_with_every_isolation_flag(tenants_file):
    argv = tool.run_argv(tenants_file, tenants_file["tenants"][0], "/run/tos/volumes/acme/home")
    pairs = {(a, b) for a, b in zip(argv, argv[1:])}
    assert {("--cgroup-parent", "tos-tenant-acme.slice"), ("--network", "tos-tenant-acme"),
            ("--cap-drop", "ALL"), ("--security-opt", "no-new-privileges"), ("--user", "session")} <= pairs
    assert "--read-only" in argv
    flags = {a.split("=")[0] for a in argv if a.startswith("-")}
    assert not flags & {"--privileged", "--cap-add", "--pid", "--ipc", "--uts", "--userns", "--device",
                        "-v", "--volume", "-p", "--publish"}
    # One mount only: the tenant's volume as the session's home.
    mounts = [b for a, b in zip(argv, argv[1:]) if a == "--mount"]
    assert mounts == ["type=bind,source=/run/tos/volumes/acme/home,target=/home/session"]
    assert "host" not in argv and not any("docker.sock" in a for a in argv)


def test_each_session_is_probed_at_its_tenants_interval_else_the_sites(tenants_file):
    acme, beta = tenants_file["tenants"]
    intervals = [next(b for a, b in zip(argv, argv[1:]) if a == "--health-interval")
                 for argv in (tool.run_argv(tenants_file, t, f"/run/tos/volumes/{t['id']}/home") for t in (acme, beta))]
    assert intervals == ["30s", "5s"]


def test_unknown_tenant_is_named(tenants_file):
    with pytest.raises(NodeError, match="unknown tenant 'zeta'.*known: acme, beta"):
        tool.tenant(tenants_file, "zeta")


def test_tool_is_one_reproducible_executable_zip():
    from roles.sessions import tool_bundle
    bundle = tool_bundle()
    assert bundle == tool_bundle() and bundle.startswith(b"#!/usr/bin/python3\n")
    # That it runs: test_tool_launcher.py.


def test_the_roles_and_the_tool_name_a_tenants_volume_alike():
    from toskit.node.tosnode.luks import MAPPER_PREFIX, device
    acme = parse_tenants("n1", [{"id": "acme"}], ALL_DEFAULTS["tenant_quota_defaults"])[0]
    assert acme.volume_device == str(device(MAPPER_PREFIX + "acme"))


@pytest.fixture
def drained(tenants_file, monkeypatch):
    """tenants.json of a drained node, where nothing may change: opening a volume or touching a
    container fails the test."""
    from toskit.node.tosnode import freezer, restore

    def untouchable(*args, **kwargs):
        raise AssertionError("a drained node changed something")

    class UntouchableVolume:
        def __getattr__(self, name):
            untouchable()
    monkeypatch.setattr(tool, "volume", lambda tenants_file, tenant_id: UntouchableVolume())
    monkeypatch.setattr(tool, "docker", untouchable)
    monkeypatch.setattr(restore, "criu_staged", untouchable)
    monkeypatch.setattr(freezer, "state", lambda tenant_id: None)
    return {**tenants_file, "drained": True}


@pytest.mark.parametrize("command", ["start", "restore"])
def test_a_drained_node_starts_and_restores_no_session_and_says_so(drained, command, monkeypatch, capsys):
    from toskit.node.tosnode import cli
    monkeypatch.setattr(tool, "load_tenants_file", lambda: drained)
    assert cli.main([command, "acme"]) == 1
    assert ("this node is drained (session_node_drained in its host data): it takes no new session; start acme on "
            "another node, or set session_node_drained = False and deploy") in capsys.readouterr().err


def test_a_session_already_on_a_drained_node_stays_as_it_is(drained, monkeypatch):
    from toskit.node.tosnode import freezer
    from toskit.node.tosnode.restore import restore
    monkeypatch.setattr(freezer, "state", lambda tenant_id: "paused")
    unmounted = type("Volume", (), {"is_mounted": lambda self: False})()
    monkeypatch.setattr(tool, "volume", lambda tenants_file, tenant_id: unmounted)
    assert restore(drained, "acme") == "acme: already paused here (`tos-session resume`)"


def test_the_deploy_writes_whether_the_node_is_drained(tenants_file):
    assert tenants_file["drained"] is False  # the default
    tenants = parse_tenants("n1", [{"id": "acme"}], ALL_DEFAULTS["tenant_quota_defaults"])
    assert '"drained": true' in tenants_json(tenants, "tos-session:abc", 1800, drained=True)


def test_the_agent_counts_as_up_only_once_its_own_socket_exists(tmp_path, monkeypatch):
    """Seen through /proc/PID/root (here this process's own root), never following a link."""
    import os
    import socket
    monkeypatch.setattr(tool, "container", lambda tenant: {"State": {"Pid": os.getpid()}})
    monkeypatch.setattr(tool, "AGENT_SOCKET", str(tmp_path / "tos-agent.sock"))
    assert not tool.agent_listening("acme")  # control: nothing there yet
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(tmp_path / "elsewhere.sock"))
        (tmp_path / "tos-agent.sock").symlink_to(tmp_path / "elsewhere.sock")
        assert not tool.agent_listening("acme")  # a link the tenant planted is not the agent
        (tmp_path / "tos-agent.sock").unlink()
        os.rename(tmp_path / "elsewhere.sock", tmp_path / "tos-agent.sock")
        assert tool.agent_listening("acme")
    monkeypatch.setattr(tool, "container", lambda tenant: None)
    assert not tool.agent_listening("acme")  # no container (or Pid 0): not up


def _reader(lines: list) -> list:
    """What `tos-session reader` writes for these input lines, one decoded answer each."""
    import json
    from toskit.node.tosnode import cli
    written = []
    assert cli.reader([line + "\n" for line in lines], written.append) == 0
    return [json.loads(line) for line in written]


def test_the_reader_answers_a_read_as_the_command_would(tenants_file, monkeypatch, capsys):
    import json
    from toskit.node.tosnode import cli, freezer
    from toskit.node.tosnode.hibernation import CHANNEL_PORT
    monkeypatch.setattr(tool, "load_tenants_file", lambda: tenants_file)
    monkeypatch.setattr(tool, "container", lambda tenant_id: {
        "NetworkSettings": {"Networks": {f"tos-tenant-{tenant_id}": {"IPAddress": "10.77.0.2"}}}})
    monkeypatch.setattr(freezer, "state", lambda tenant_id, found=None: "running")
    running, unknown = _reader([json.dumps(["address", "acme"]), json.dumps(["address", "zeta"])])
    assert running == {"code": 0, "out": f"10.77.0.2:{CHANNEL_PORT}", "err": ""}
    assert cli.main(["address", "zeta"]) == unknown["code"] == 1
    assert capsys.readouterr().err.strip() == unknown["err"] and "unknown tenant 'zeta'" in unknown["err"]


@pytest.mark.parametrize("line", [
    ["start", "acme"], ["hibernate", "acme"], ["stop", "acme"], ["volume", "open", "acme"], ["exec", "acme", "id"],
    ["policy"], ["reader"], ["report", "--help"], ["address", "-h"], ["report", "acme", "--take-over"], [],
    [["report"]], ["report", 1], {"argv": ["report"]}, "report acme"])
def test_the_reader_answers_reads_only_and_prints_nothing_else(line, monkeypatch, capsys):
    import json
    from toskit.node.tosnode import cli

    def changed(args):
        raise AssertionError(f"the reader ran {args}")
    monkeypatch.setattr(cli, "outcome", changed)
    assert [(a["code"], "refused" in a["err"]) for a in _reader([json.dumps(line), "not json"])] == [(2, True)] * 2
    assert capsys.readouterr().out == ""  # nothing on its output but its answers (no --help text)
