"""The broker through the lab's front door, as a person meets it: dave (tenant delta) signs in in a real
browser, opens the Desktop, and the gateway's broker starts delta's session on one node (mutual TLS
1.3 to that node's API); opening it again attaches to the same session. First stage (nothing else
runs): the session is stopped again at the end, before node2 is rebuilt."""

import json

import pytest
from browser import chromium, screenshot, sign_in, wait_for
from front_door import GATEWAYS, VAULT, portal_url, trusted
from labtools import CONFIG, on

from toskit.lab import identity
from toskit.lab.config import GATEWAY_SERVER_NAME, VAULT_NAME

TENANT, PERSON = "delta", "dave"
NODES = [h.name for h in CONFIG.hosts if h.group == "nodes"]
pytestmark = pytest.mark.skipif(not GATEWAYS, reason="the lab has no gateway (TOS_LAB_GATEWAYS=0)")


def where_running() -> list:
    """The nodes on which delta's session is live, by each node's own report."""
    found = []
    for node in NODES:
        report = json.loads(on(node, f"tos-session report {TENANT}").stdout)
        if any(s["tenant"] == TENANT and s["here"] in ("running", "paused") for s in report["sessions"]):
            found.append(node)
    return found


@pytest.fixture
def delta_stopped():
    for node in NODES:
        on(node, f"tos-session stop {TENANT}", check=False)
    assert where_running() == []
    yield
    for node in NODES:
        on(node, f"tos-session stop {TENANT}", check=False)


def desktop_says(browser, url: str) -> tuple:
    browser.get(url + "/desktop")
    status = wait_for(browser, "#session-status[data-state=ready], #session-status[data-state=unavailable]", 400)
    # (.text is as shown: LCARS capitals)
    return status.get_attribute("data-state"), status.get_attribute("data-action"), status.text.lower()


@pytest.mark.parametrize("gateway", GATEWAYS, ids=lambda h: h.name)
def test_a_person_opens_the_desktop_and_the_broker_starts_then_attaches_one_session(gateway, delta_stopped):
    url = portal_url(gateway)
    with chromium([GATEWAY_SERVER_NAME, VAULT_NAME], trusted()) as browser:
        sign_in(browser, url, PERSON, identity.password(VAULT.dir, PERSON))
        wait_for(browser, "p.approved", 120)
        assert desktop_says(browser, url) == ("ready", "start", "your session was started.")
        screenshot(browser, "lab-desktop")
        running = where_running()
        assert len(running) == 1, running
        # The broker's account, in the gateway's log only: which node, and why.
        log = on(gateway.name, "journalctl -u tos-portal -n 50 --no-pager -o cat").stdout
        assert f"session of {TENANT}: start on {running[0]}" in log, log[-2000:]
        # The same person again (another tab): the same session, attached, nothing started.
        assert desktop_says(browser, url)[:2] == ("ready", "attach")
        assert where_running() == running
