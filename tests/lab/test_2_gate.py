"""The command gate through the lab's front door, in a real browser: dave stages commands at the prompt
of his Desktop; his session (delta) reads and judges them, and runs one only once it is approved
after the wait, a destructive one only with his passkey, verified by the gateway for exactly that
command (the browser's virtual authenticator); an approval missing, forged, replayed or moved to
another command is refused and nothing runs; the session's audit chain verifies, a tampered copy of
it is found out, and the node's journal tells the events without the commands' arguments.
First stage, after the broker's tests: delta's session is stopped again at the end."""

import json
import time

import pytest
from browser import add_passkey, authenticator, chromium, screenshot, sign_in, until, wait_for
from front_door import GATEWAYS, VAULT, portal_url, trusted
from labtools import on
from test_2_broker import NODES, desktop_says, where_running

from toskit.lab import identity
from toskit.lab.config import GATEWAY_SERVER_NAME, VAULT_NAME

TENANT, PERSON = "delta", "dave"
RUN = int(time.time())
pytestmark = pytest.mark.skipif(not GATEWAYS, reason="the lab has no gateway (TOS_LAB_GATEWAYS=0)")


@pytest.fixture(scope="module")
def prompt():
    """dave signed in with a passkey, his Desktop open; what the page sends on its channel is recorded
    (as a script slipped into the page could read it). Yields (browser, the node his session is on)."""
    url = portal_url(GATEWAYS[0])
    with chromium([GATEWAY_SERVER_NAME, VAULT_NAME], trusted()) as browser:
        sign_in(browser, url, PERSON, identity.password(VAULT.dir, PERSON))
        wait_for(browser, "p.approved", 120)
        authenticator(browser)
        add_passkey(browser, url, "gate")
        assert desktop_says(browser, url)[0] == "ready"
        wait_for(browser, "#desktop[data-channel=open]", 120)
        [node] = where_running()
        browser.execute_script("window.sent = []; const send = gate.send;"
                               "gate.send = (message) => { window.sent.push(message); send(message); };")
        yield browser, node
    for node in NODES:
        on(node, f"tos-session stop {TENANT}", check=False)


def staged(browser, line: str) -> dict:
    """The stage as the session read it, once the page shows it."""
    field = browser.find_element("css selector", "#prompt-line")
    field.clear()
    field.send_keys(line)
    browser.find_element("css selector", "#stage").click()
    return until(browser, lambda d: (s := d.execute_script("return gate.stage")) and s["line"] == line and s, 60)


def said(browser, *words: str) -> str:
    """The prompt's status once it says one of `words`."""
    until(browser, lambda d: any(w in d.find_element("css selector", "#gate-status").text.lower() for w in words), 60)
    return browser.find_element("css selector", "#gate-status").text.lower()


def send(browser, message: dict) -> None:
    """A message on the page's channel, sent as a script in the page would send it."""
    browser.execute_script("gate.send(arguments[0])", message)


def exists(node: str, path: str) -> bool:
    """Seen in the session itself, not through the gate."""
    return on(node, f"tos-session exec {TENANT} test -e {path}", check=False).returncode == 0


def ran(browser) -> int:
    until(browser, lambda d: d.find_element("css selector", "#command-output").get_attribute("data-exit"), 60)
    return int(browser.find_element("css selector", "#command-output").get_attribute("data-exit"))


def test_a_harmless_command_runs_only_after_it_is_approved(prompt):
    browser, node = prompt
    made = f"/home/session/gate-{RUN}"
    stage = staged(browser, f"touch ~/gate-{RUN}")
    assert stage["verdict"] == "run" and stage["shown"] == f"touch {made}"
    assert not browser.find_element("css selector", "#approve").is_enabled()  # the wait
    send(browser, {"cmd": "approve", "id": stage["id"], "digest": stage["digest"]})  # a script, before the wait
    assert "too soon" in said(browser, "too soon")
    time.sleep(1)
    assert not exists(node, made)
    until(browser, lambda d: d.find_element("css selector", "#approve").is_enabled(), 10)
    browser.find_element("css selector", "#approve").click()
    assert ran(browser) == 0 and exists(node, made)


def test_a_destructive_command_runs_only_with_the_passkey(prompt):
    browser, node = prompt
    doomed = f"/home/session/gate-dir-{RUN}"
    on(node, f"tos-session exec {TENANT} mkdir -p {doomed}/inside")
    stage = staged(browser, f"rm -r ~/gate-dir-{RUN}")
    assert stage["verdict"] == "destructive" and stage["reasons"] == ["rm: destructive (recursive)"]
    screenshot(browser, "lab-gate-destructive")
    time.sleep(stage["wait_seconds"])
    send(browser, {"cmd": "approve", "id": stage["id"], "digest": stage["digest"]})  # no assertion
    assert "passkey" in said(browser, "passkey assertion")
    forged = {"id": "AAAA", "rawId": "AAAA", "type": "public-key",
              "response": {"clientDataJSON": "e30", "authenticatorData": "AAAA", "signature": "AAAA"}}
    send(browser, {"cmd": "approve", "id": stage["id"], "digest": stage["digest"], "assertion": forged,
                   "challenge": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"})
    said(browser, "did not verify")
    assert exists(node, doomed)
    browser.find_element("css selector", "#approve").click()  # the virtual authenticator signs
    assert ran(browser) == 0 and not exists(node, doomed)


def test_a_replayed_or_altered_approval_is_refused(prompt):
    browser, node = prompt
    used = [m for m in browser.execute_script("return window.sent") if m.get("assertion")][-1]  # the passkey's
    send(browser, used)  # the same approval again: its passkey's count is old, and its stage is used
    said(browser, "did not verify", "no such staged command")
    kept = f"/home/session/gate-keep-{RUN}"
    on(node, f"tos-session exec {TENANT} mkdir -p {kept}")
    other = staged(browser, f"rm -r ~/gate-keep-{RUN}")
    time.sleep(other["wait_seconds"])
    send(browser, {**used, "id": other["id"], "digest": other["digest"]})  # that approval, moved to another command
    said(browser, "did not verify")
    send(browser, {**used, "id": other["id"]})  # or to its id only
    said(browser, "did not verify")
    time.sleep(1)
    assert exists(node, kept)
    log = on(node, f"tos-session exec {TENANT} cat /home/session/.tos/gate-audit.jsonl").stdout
    assert [json.loads(line)["event"] for line in log.splitlines()].count("approved") >= 2  # ours, earlier runs'
    browser.find_element("css selector", "#cancel").click()
    said(browser, "cancelled")


def test_the_audit_chain_verifies_and_a_tampered_line_is_found(prompt):
    _, node = prompt
    intact = on(node, f"tos-session exec {TENANT} tos-gate-verify", check=False)
    assert intact.returncode == 0 and "chain intact" in intact.stdout, intact.stdout + intact.stderr
    tamper = ("import json; lines = open('/home/session/.tos/gate-audit.jsonl').readlines(); "
              "entry = json.loads(lines[1]); entry['by'] = 'mallory'; lines[1] = json.dumps(entry) + '\\n'; "
              "open('/tmp/tampered.jsonl', 'w').writelines(lines)")
    on(node, f"tos-session exec {TENANT} python3 -c \"{tamper}\"")
    found = on(node, f"tos-session exec {TENANT} tos-gate-verify /tmp/tampered.jsonl", check=False)
    assert found.returncode == 1 and "line 2 breaks the chain" in found.stdout, found.stdout + found.stderr
    # The node's journal: who, what verdict, which commands, the approver and passkey; no argument.
    journal = on(node, "journalctl -u tos-node-api -n 400 --no-pager -o cat").stdout
    assert f"staged by {PERSON}: destructive (rm)" in journal and "with passkey" in journal, journal[-2000:]
    assert f"gate-dir-{RUN}" not in journal and f"gate-keep-{RUN}" not in journal
