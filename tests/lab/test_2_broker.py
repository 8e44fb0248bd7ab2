"""The broker through the lab's front door, as a person meets it: dave (tenant delta) signs in in a real
browser, opens the Desktop, and the gateway's broker starts delta's session on one node (mutual TLS
1.3 to that node's API); the page's channel (a WebSocket through the gateway and the node API to the
session's agent) shows the agent's state and changes it; the channel counts as a client on the node
while the page is open, and not once it is left; opening it again attaches to the same session; a
sign-out in another tab closes the channel.
First stage (nothing else runs): the session is stopped again at the end, before node2 is rebuilt."""

import json
import time

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


def channel_clients(node: str) -> int:
    """Connections to delta's session channel, as the node's idle policy counts them."""
    pid = on(node, f"docker inspect -f '{{{{.State.Pid}}}}' tos-session-{TENANT}").stdout.strip()
    return len(on(node, f"nsenter -t {pid} -n ss -Htn state established '( sport = :7000 )'").stdout.splitlines())


def clients_within(node: str, seconds: float) -> int:
    """The channel clients left on the node once they are gone, or after `seconds`."""
    deadline = time.monotonic() + seconds
    while channel_clients(node) and time.monotonic() < deadline:
        time.sleep(1)
    return channel_clients(node)


def agent_path(node: str) -> list:
    shown = json.loads(on(node, f"tos-session exec {TENANT} tos-session-ctl show").stdout)
    return [entry["name"] for entry in shown["path"]]


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
        running = where_running()
        assert len(running) == 1, running
        # The channel: the agent's frames arrive (its counter moves), and the page's input reaches it.
        desktop = wait_for(browser, "#desktop[data-channel=open][data-ticks]", 120)
        first = int(desktop.get_attribute("data-ticks"))
        wait_for(browser, f"#desktop[data-channel=open]:not([data-ticks='{first}'])", 30)
        assert channel_clients(running[0]) == 1
        # (The volume keeps the path of earlier runs: names new to it, what was there before kept.)
        before, run = agent_path(running[0]), int(time.time())
        entry = browser.find_element("css selector", "#entry-name")
        entry.clear()
        entry.send_keys(f"Engineering{run}")
        browser.find_element("css selector", "#open-sector").click()
        wait_for(browser, f"#sectors tbody tr:nth-child({len(before) + 1})", 30)
        assert agent_path(running[0]) == [*before, f"Engineering{run}"]  # the agent's own, not the page's
        assert browser.find_elements("css selector", "#sectors td")[-1].text.lower() == f"engineering{run}"
        # An Active App launched from the page is the agent's child: the pid shown is its own.
        entry.clear()
        entry.send_keys(f"Editor{run}")
        browser.find_element("css selector", "#launch-app").click()
        wait_for(browser, "#active-apps tbody tr:last-child td:nth-child(2)", 60)
        [shown] = [row.find_elements("css selector", "td")[1].text.lower()
                   for row in browser.find_elements("css selector", "#active-apps tbody tr")
                   if row.find_elements("css selector", "td")[0].text.lower() == f"editor{run}"]
        app = json.loads(on(running[0], f"tos-session exec {TENANT} tos-session-ctl app Editor{run}").stdout)
        assert shown == f"pid {app['pid']}", (shown, app)
        screenshot(browser, "lab-desktop")
        # The broker's account, in the gateway's log only: which node, and why.
        log = on(gateway.name, "journalctl -u tos-portal -n 50 --no-pager -o cat").stdout
        assert f"session of {TENANT}: start on {running[0]}" in log, log[-2000:]
        assert f"session channel of {TENANT} opened to {running[0]}" in log, log[-2000:]
        # The same person again (another tab): the same session, attached, nothing started.
        assert desktop_says(browser, url)[:2] == ("ready", "attach")
        assert where_running() == running
        # Leaving the page closes its channel: the node sees no client (what the idle policy waits for).
        browser.get(url + "/approved")
        assert clients_within(running[0], 30) == 0
        # Signing out in another tab closes this tab's channel at once: the page says so, the node
        # sees no client, and the page does not reconnect.
        desktop_says(browser, url)
        wait_for(browser, "#desktop[data-channel=open]", 120)
        desktop_tab = browser.current_window_handle
        browser.switch_to.new_window("tab")
        browser.get(url + "/approved")
        browser.find_element("css selector", "form[action='/signout'] button").click()
        browser.switch_to.window(desktop_tab)
        wait_for(browser, "#desktop[data-channel=signed-out]", 30)
        assert clients_within(running[0], 30) == 0
        time.sleep(3)  # three reconnect periods: the page tried none
        assert browser.find_element("css selector", "#channel-state").text.lower() == "signed out"
        assert "closed: the person's sign-in ended" in on(gateway.name, "journalctl -u tos-portal -n 20 --no-pager "
                                                          "-o cat").stdout
