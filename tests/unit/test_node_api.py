"""tos-node-api (toskit/node/nodeapi): each verb is one fixed tos-session command, and nothing a request
carries becomes anything else. tos-session is stood in for by a script that records its argv."""

import json
import re
import sys

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from toskit.node.nodeapi import app as node_api
from toskit.tenants import TENANT_ID
from tests.unit.session_agent import free_port, running_agent

REPORT = {"node": "node1", "drained": False, "memory": {"total_bytes": 2, "available_bytes": 1}, "sessions": []}


@pytest.fixture
def tool(tmp_path, monkeypatch):
    """A tos-session that records each command's argv (one JSON line) and answers as told by its tenant,
    as a process of its own or as the resident reader (report and address)."""
    calls = tmp_path / "calls"
    script = tmp_path / "tos-session"
    script.write_text(f"""#!/usr/bin/python3
import json, os, sys, time

def answer(argv):
    open({str(calls)!r}, "a").write(json.dumps(argv) + "\\n")
    tenant = argv[1] if len(argv) > 1 else None
    if tenant == "zeta":
        return 1, "", "tos-session: unknown tenant 'zeta' on this node"
    if tenant == "slow":
        time.sleep(30)
    if tenant == "broken":
        return 1, "", "tos-session: /etc/tos/node.json is missing"
    if tenant == "busy":
        return 75, "", "tos-session: acme is busy: pid 7: tos-session hibernate acme"
    if tenant == "paused":
        return 1, "", "tos-session: paused: no running session on this node"
    if tenant == "dies":
        os._exit(1)
    if argv[0] == "address":  # where the test's agent listens
        return 0, os.environ["TEST_AGENT_ADDRESS"], ""
    if argv[0] != "report":
        return 0, argv[0] + ": step one" + chr(10) + argv[0] + "ed " + tenant + " in 1.0 s", ""
    return 0, {json.dumps(REPORT)!r}, ""

if sys.argv[1] == "reader":  # as tos-session's own (tosnode/cli.py reader): a JSON line each way
    open({str(tmp_path / "readers")!r}, "a").write(str(os.getpid()) + "\\n")
    for line in sys.stdin:
        code, out, err = answer(json.loads(line))
        print(json.dumps({{"code": code, "out": out, "err": err}}), flush=True)
else:
    code, out, err = answer(sys.argv[1:])
    print(out, end="")
    print(err, file=sys.stderr, end="")
    sys.exit(code)
""")
    script.chmod(0o755)
    monkeypatch.setattr(node_api, "TOOL", str(script))
    return lambda: [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []


@pytest.fixture
def client():
    with TestClient(node_api.application()) as client:  # one event loop, as the service has
        yield client


def test_the_report_is_tos_sessions_own(client, tool):
    assert client.get("/v1/report").json() == REPORT
    assert client.get("/v1/report/acme").status_code == 200
    assert tool() == [["report"], ["report", "acme"]]


@pytest.mark.parametrize("tenant", ["ACME", "a", "acme;id", "--take-over", "-h", "x" * 25, "acme%20beta", "..", "acme-1"])
def test_a_tenant_id_of_another_shape_never_reaches_tos_session(client, tool, tenant):
    assert client.get(f"/v1/report/{tenant}").status_code == 404
    assert tool() == []


def test_an_unknown_tenant_is_404_and_a_failing_node_503(client, tool):
    assert client.get("/v1/report/zeta").status_code == 404
    answer = client.get("/v1/report/broken")
    assert answer.status_code == 503 and "node.json is missing" in answer.json()["error"]


def test_a_hung_tos_session_is_cut_off(client, tool, monkeypatch):
    monkeypatch.setattr(node_api, "TIMEOUT", 0.5)
    answer = client.get("/v1/report/slow")
    assert answer.status_code == 503 and "did not finish in 0.5 s" in answer.json()["error"]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_nothing_but_the_verbs_is_served(client, tool, method):
    assert client.request(method, "/v1/report").status_code == 405
    assert client.get("/v1/exec").status_code == 404 and tool() == []


@pytest.mark.parametrize("verb", ["start", "restore", "resume", "pause"])
def test_each_change_is_its_tos_session_command_answered_when_done(client, tool, verb):
    answer = client.post(f"/v1/sessions/acme/{verb}")
    assert answer.status_code == 200 and answer.json() == {"done": f"{verb}ed acme in 1.0 s"}
    assert tool() == [[verb, "acme"]]


@pytest.mark.parametrize("verb", ["stop", "hibernate", "exec", "volume", "report", "policy", "start;id", "--take-over"])
def test_no_other_verb_reaches_tos_session(client, tool, verb):
    assert client.post(f"/v1/sessions/acme/{verb}").status_code == 404
    assert client.post("/v1/sessions/acme/start/--take-over").status_code == 404
    assert tool() == []


@pytest.mark.parametrize("tenant", ["ACME", "acme;id", "--take-over", "x" * 25, ".."])
def test_a_change_for_a_tenant_id_of_another_shape_never_reaches_tos_session(client, tool, tenant):
    assert client.post(f"/v1/sessions/{tenant}/start").status_code == 404
    assert tool() == []


def test_a_busy_tenant_is_503_an_unknown_one_404_and_a_change_is_never_a_get(client, tool):
    busy = client.post("/v1/sessions/busy/start")
    assert busy.status_code == 503 and "busy" in busy.json()["error"]
    assert client.post("/v1/sessions/zeta/restore").status_code == 404
    assert client.post("/v1/sessions/broken/start").status_code == 409
    assert client.get("/v1/sessions/acme/start").status_code == 405
    assert [call[0] for call in tool()] == ["start", "restore", "start"]


def test_the_api_and_the_schema_agree_on_what_a_tenant_id_is():
    assert node_api.TENANT_ID.pattern == TENANT_ID
    assert re.fullmatch(TENANT_ID, "acme") and node_api.TENANT_ID.fullmatch("acme")


def test_asks_at_once_share_one_run_and_tos_session_runs_as_root_alone(tool, monkeypatch, tmp_path):
    """Two reports asked together start tos-session once; it runs without the service's www-data
    group and group-open umask (when the API runs as root, as on a node)."""
    import asyncio
    import os
    script = tmp_path / "tos-session"
    script.write_text(script.read_text().replace("import json, os, sys, time\n", "import json, os, sys, time\n"
                                                 "time.sleep(0.5)\n"
                                                 f"open({str(tmp_path / 'ids')!r}, 'a').write("
                                                 "json.dumps([os.getgid(), os.getgroups(), os.umask(0)]) + '\\n')"))

    async def two():
        try:
            return await asyncio.gather(node_api.tos_session("report"), node_api.tos_session("report"))
        finally:
            await node_api.reader().close()
    # As the service runs: a group-open umask, and (as root) www-data's group among its groups.
    # On asyncio's own loop, as the service runs it (__main__.py): another test's uvicorn may have left
    # uvloop's policy installed.
    umask, groups, policy = os.umask(0o007), os.getgroups(), asyncio.get_event_loop_policy()
    try:
        asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())
        if os.geteuid() == 0:
            os.setgroups([33])
        first, second = asyncio.run(two())
    finally:
        os.umask(umask)
        asyncio.set_event_loop_policy(policy)
        if os.geteuid() == 0:
            os.setgroups(groups)
    assert first == second and first[0] == 0
    assert tool() == [["report"]]  # one run for both
    gid, groups, umask = json.loads((tmp_path / "ids").read_text())
    assert umask == 0o022
    # gevent's Popen (pyinfra's CLI patches subprocess when another test module imported it) ignores
    # extra_groups; the node API never imports gevent. Run alone, this module checks the groups.
    gevent_popen = "gevent.monkey" in sys.modules and sys.modules["gevent.monkey"].is_module_patched("subprocess")
    if os.geteuid() == 0 and not gevent_popen:
        assert gid == 0 and groups == []


def test_the_channel_is_the_running_agents_own_relayed_both_ways(client, tool, tmp_path, monkeypatch):
    with running_agent("acme", tmp_path) as port:
        monkeypatch.setenv("TEST_AGENT_ADDRESS", f"127.0.0.1:{port}")
        with client.websocket_connect("/v1/sessions/acme/channel") as channel:
            assert channel.receive_json()["tenant"] == "acme"
            channel.send_text(json.dumps({"cmd": "push", "level": 1, "name": "Science"}))
            assert channel.receive_json()["path"][-1] == {"level": 1, "name": "Science"}
    assert tool() == [["address", "acme"]]


@pytest.mark.parametrize(("tenant", "code", "asked"), [
    ("zeta", node_api.NO_SUCH_TENANT, True), ("paused", node_api.NOT_RUNNING, True),
    ("acme;id", node_api.NO_SUCH_TENANT, False), ("ACME", node_api.NO_SUCH_TENANT, False)])
def test_no_channel_to_an_unknown_tenant_or_a_session_not_running(client, tool, tenant, code, asked):
    with pytest.raises(WebSocketDisconnect) as refused:
        with client.websocket_connect(f"/v1/sessions/{tenant}/channel"):
            pass
    assert refused.value.code == code
    assert tool() == ([["address", tenant]] if asked else [])


def test_no_channel_when_the_agent_does_not_answer(client, tool, monkeypatch):
    monkeypatch.setenv("TEST_AGENT_ADDRESS", f"127.0.0.1:{free_port()}")
    with pytest.raises(WebSocketDisconnect) as refused:
        with client.websocket_connect("/v1/sessions/acme/channel"):
            pass
    assert refused.value.code == node_api.NOT_RUNNING


def readers(tmp_path) -> list:
    """The pids of the readers the node API started, in order."""
    found = tmp_path / "readers"
    return found.read_text().split() if found.exists() else []


def test_reports_and_addresses_are_answered_by_one_resident_reader(tool, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_AGENT_ADDRESS", "10.77.0.2:7000")
    with TestClient(node_api.application()) as client:  # one event loop, as the service has
        for _ in range(3):
            assert client.get("/v1/report/acme").json() == REPORT
        assert client.get("/v1/report/zeta").status_code == 404
        assert client.post("/v1/sessions/acme/resume").status_code == 200  # a change: a process of its own
        assert client.get("/v1/report").status_code == 200
    assert tool() == [["report", "acme"]] * 3 + [["report", "zeta"], ["resume", "acme"], ["report"]]
    assert len(readers(tmp_path)) == 1


def test_a_reader_that_hangs_is_killed_and_the_next_ask_has_a_new_one(tool, tmp_path, monkeypatch):
    import os
    monkeypatch.setattr(node_api, "TIMEOUT", 0.5)
    with TestClient(node_api.application()) as client:
        assert client.get("/v1/report/acme").status_code == 200
        hung = client.get("/v1/report/slow")
        assert hung.status_code == 503 and "did not finish in 0.5 s" in hung.json()["error"]
        assert client.get("/v1/report/acme").json() == REPORT  # not the hung one's late answer
    first, second = readers(tmp_path)
    with pytest.raises(ProcessLookupError):  # killed (and reaped), not left sleeping
        for _ in range(50):
            os.kill(int(first), 0)
            __import__("time").sleep(0.1)


def test_a_reader_that_ends_costs_one_answer_and_a_new_tool_gets_a_new_reader(tool, tmp_path):
    with TestClient(node_api.application()) as client:
        ended = client.get("/v1/report/dies")
        assert ended.status_code == 503 and "reader ended" in ended.json()["error"]
        assert client.get("/v1/report/acme").status_code == 200
        script = tmp_path / "tos-session"
        installed = tmp_path / "tos-session.new"  # as the deploy installs a file: a new one renamed over it
        installed.write_text(script.read_text())
        installed.chmod(0o755)
        installed.rename(script)
        assert client.get("/v1/report/acme").status_code == 200
        assert client.get("/v1/report/acme").status_code == 200
    assert len(readers(tmp_path)) == 3


def test_the_api_and_tos_session_agree_on_what_the_reader_answers():
    from toskit.node.tosnode import cli
    assert node_api.READS == cli.READS


def test_each_change_is_logged_with_its_exit_status_and_duration(client, tool, caplog):
    """The journal's account a sysadmin (and the front-door benchmark) reads: verb, tenant, exit, seconds."""
    import logging
    with caplog.at_level(logging.INFO, logger="tos-node-api"):
        client.post("/v1/sessions/acme/restore")
        client.post("/v1/sessions/busy/pause")
    lines = [r.getMessage() for r in caplog.records if r.name == "tos-node-api"]
    assert [re.sub(r"in [0-9.]+ s", "in N s", line) for line in lines] == [
        "restore acme: exit 0 in N s", "pause busy: exit 75 in N s"]


@pytest.mark.parametrize(("message", "line"), [
    ({"type": "staged", "id": "s1", "by": "dave", "verdict": "destructive", "commands": ["rm"], "line": "rm -r ~/secret",
      "shown": "rm -r /home/session/secret"}, "gate acme: stage s1 staged by dave: destructive (rm)"),
    ({"type": "approved", "id": "s1", "approver": "dave", "credential": "abcdefghijklmnopqrstuvwxyz"},
     "gate acme: stage s1 approved by dave with passkey abcdefghijklmnop"),
    ({"type": "exited", "id": "s1", "exit": 2}, "gate acme: stage s1 exited 2"),
    ({"type": "refused", "id": "s1", "error": "the gate denies this command: rm -r ~/secret: ..."},
     "gate acme: stage s1 refused: the gate denies this command"),
])
def test_the_gates_events_reach_the_journal_once_and_without_arguments(message, line, caplog):
    import logging
    node_api._journalled.clear()
    with caplog.at_level(logging.INFO, logger="tos-node-api"):
        for _ in range(2):  # two tabs see the same event
            node_api.gate_journal("acme", json.dumps(message))
        node_api.gate_journal("acme", json.dumps({"type": "frame", "ticks": 1}))
        node_api.gate_journal("acme", json.dumps({"type": "output", "id": "s1", "data": "secret output"}))
    assert [r.getMessage() for r in caplog.records if r.name == "tos-node-api"] == [line]
    assert "secret" not in line
