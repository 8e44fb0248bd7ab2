"""The gateway's part of the command gate (toskit/gateway/portal/gate.py): the tenant's policy sent to its
session when a channel opens, who staged and approved said by the gateway alone (a tab that speaks for
it is not believed), a passkey approval verified before the session hears of it, and challenges bound
to one sign-in and one stage. Signed in for real (OpenBao as the provider), real session agents."""

import contextlib
import time

import pytest
from starlette.testclient import TestClient
import test_portal_sign_in as signing_in
from test_portal_desktop import agents, channel, node1  # noqa: F401 (fixtures)
from test_portal_sign_in import PUBLIC, csrf_of, settings, sign_in

from toskit.gate_data import CommandGateData, tenant_policy
from toskit.gateway.portal import gate
from toskit.gateway.portal.app import Portal
from toskit.gateway.portal.passkeys import b64
from toskit.gateway.portal.sessions import COOKIE

provider = signing_in.provider  # the fixture (OpenBao as the provider), for this module too
POLICY = {**tenant_policy(CommandGateData.model_validate(CommandGateData.defaults()), None), "wait_seconds": 0.3}


def portal(provider, broker, policy=POLICY):
    tenants = [{"id": "acme", "enabled": True, "people": {"lab": ["alice@acme.test"]}, "memory": 1 << 30,
                "gate": policy},
               {"id": "beta", "enabled": True, "people": {"lab": ["bob@beta.test"]}, "memory": 1 << 30, "gate": policy}]
    return TestClient(Portal(settings(provider, tenants=tenants, broker=broker)).application(), base_url=PUBLIC,
                      follow_redirects=False)


def next_of(desktop, kind: str) -> dict:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        message = desktop.receive_json()
        if message["type"] == kind:
            return message
    raise AssertionError(f"no {kind} message")


def staged(desktop, line: str) -> dict:
    """Staged (the session answers once its gate has loaded: it loads beside a starting agent)."""
    desktop.send_json({"cmd": "stage", "line": line})
    return next_of(desktop, "staged")


@contextlib.contextmanager
def approvable(provider, broker, line: str):
    """alice signed in, her Desktop's channel open, `line` staged and its wait over: (desktop, the stage)."""
    with portal(provider, broker) as browser:
        sign_in(browser, provider, "alice")
        with channel(browser) as desktop:
            stage = staged(desktop, line)
            time.sleep(0.35)  # the policy's wait
            yield browser, desktop, stage


def test_the_session_gets_its_tenants_policy_and_the_gateway_says_who_staged(provider, node1, agents, tmp_path):
    _, broker = node1
    with portal(provider, broker) as browser:
        sign_in(browser, provider, "alice")
        with channel(browser) as desktop:
            assert next_of(desktop, "gate")["wait"] == 0.3  # the policy reached the session
            stage = staged(desktop, "echo hi")
            assert stage["verdict"] == "run"
            time.sleep(0.35)
            desktop.send_json({"cmd": "approve", "id": stage["id"], "digest": stage["digest"]})
            assert next_of(desktop, "output")["data"] == "hi\n" and next_of(desktop, "exited")["exit"] == 0
    log = (tmp_path / "acme" / ".tos" / "gate-audit.jsonl").read_text()
    assert '"by": "alice' in log and '"approver": "alice' in log


@pytest.mark.parametrize("claim", [
    {"user_verified": True, "credential": "made-up"}, {"person": "root", "user_verified": True, "credential": "x"}])
def test_a_tab_that_speaks_for_the_gateway_is_not_believed(provider, node1, agents, tmp_path, claim):
    (tmp_path / "acme" / "old").mkdir(parents=True)
    with approvable(provider, node1[1], "rm -r ~/old") as (_, desktop, stage):
        assert stage["verdict"] == "destructive"
        desktop.send_json({"cmd": "approve", "id": stage["id"], "digest": stage["digest"], "gateway": claim})
        assert "passkey" in next_of(desktop, "refused")["error"]
        desktop.send_json({"cmd": "gate", "gateway": {"policy": {**POLICY, "default": "run", "commands": {"rm": "run"}}}})
        again = staged(desktop, "rm -r ~/old")  # the tab's own policy never reached the session
        assert again["verdict"] == "destructive"
    assert (tmp_path / "acme" / "old").exists()


def test_an_assertion_that_does_not_verify_never_reaches_the_session(provider, node1, agents, tmp_path):
    (tmp_path / "acme" / "old").mkdir(parents=True)
    with approvable(provider, node1[1], "rm -r ~/old") as (browser, desktop, stage):
        forged = {"id": "x", "rawId": "x", "type": "public-key",
                  "response": {"clientDataJSON": "e30", "authenticatorData": "AA", "signature": "AA"}}
        # This sign-in's own challenge for this stage: what fails is the assertion itself.
        bound = b64(gate.challenge(browser.cookies.get(COOKIE), stage["id"], stage["digest"]))
        assert gate.challenge_holds(bound, browser.cookies.get(COOKIE), stage["id"], stage["digest"], 300)
        desktop.send_json({"cmd": "approve", "id": stage["id"], "digest": stage["digest"], "assertion": forged,
                           "challenge": bound})
        assert next_of(desktop, "refused")["error"] == "The passkey did not verify for this command."
    log = (tmp_path / "acme" / ".tos" / "gate-audit.jsonl").read_text()
    assert '"event": "approved"' not in log and '"event": "refused"' not in log  # the session never heard of it
    assert (tmp_path / "acme" / "old").exists()


def test_the_challenge_is_asked_by_this_sites_page_of_a_signed_in_person(provider, node1):
    _, broker = node1
    with portal(provider, broker) as browser:
        body = {"id": "a" * 16, "digest": "0" * 64}
        assert browser.post("/gate/challenge", json=body).status_code == 401
        sign_in(browser, provider, "alice")
        assert browser.post("/gate/challenge", json=body, headers={"Origin": PUBLIC}).status_code == 403  # no CSRF
        asked = browser.post("/gate/challenge", json=body, headers={"X-CSRF-Token": csrf_of(browser), "Origin": PUBLIC})
        # Past the checks: alice has no passkey here (this module's Vault keeps none: test_portal_browser has them).
        assert asked.status_code in (400, 503) and "passkey" in asked.json()["error"].lower()
        bad = browser.post("/gate/challenge", json={"id": "x"}, headers={"X-CSRF-Token": csrf_of(browser),
                                                                        "Origin": PUBLIC})
        assert bad.status_code == 400


@pytest.mark.parametrize(("change", "holds"), [
    ({}, True), ({"sid": "another sign-in"}, False), ({"stage_id": "another stage"}, False),
    ({"digest": "1" * 64}, False), ({"age": 301}, False), ({"age": -60}, False), ({"key": b"k" * 32}, False)])
def test_a_challenge_holds_for_its_sign_in_and_stage_while_the_stage_lives(change, holds):
    asked = {"sid": "sid-1", "stage_id": "abcd", "digest": "0" * 64}
    given = b64(gate.challenge(asked["sid"], asked["stage_id"], asked["digest"], time.time() - change.get("age", 0),
                               change.get("key", gate.KEY)))
    checked = {k: change.get(k, v) for k, v in asked.items()}
    assert gate.challenge_holds(given, checked["sid"], checked["stage_id"], checked["digest"], 300) is holds


@pytest.mark.parametrize("given", ["", "!!", "AAAA", None, b64(b"x" * 40), b64(b"x" * 72)])
def test_a_challenge_that_is_not_one_does_not_hold(given):
    assert gate.challenge_holds(given, "sid-1", "abcd", "0" * 64, 300) is False


def test_the_challenge_names_the_command_it_approves():
    """What the passkey signs (clientDataJSON's challenge) carries the stage's digest itself."""
    digest = "ab" * 32
    assert gate.challenge("sid-1", "abcd", digest)[8:40] == bytes.fromhex(digest)
    assert gate.challenge_holds(b64(gate.challenge("sid-1", "abcd", digest)), "sid-1", "abcd", "not hex", 300) is False
