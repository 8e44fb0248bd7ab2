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
from labtools import APP_BLOB_MB, CONFIG, PYINFRA, assert_freed, memory_held, on, run

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


@pytest.fixture(scope="module")
def delta_session():
    """delta stopped before this module and after it; what its first test left for the walk-away test."""
    for node in NODES:
        on(node, f"tos-session stop {TENANT}", check=False)
    assert where_running() == []
    left = {}
    yield left
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
def test_a_person_opens_the_desktop_and_the_broker_starts_then_attaches_one_session(gateway, delta_session):
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
        delta_session.update(node=running[0], path=agent_path(running[0]), app=(f"Editor{run}", app["pid"]),
                             ticks=int(browser.find_element("css selector", "#desktop").get_attribute("data-ticks")))
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


def policy(node: str) -> str:
    """The idle policy, once, as its timer runs it (the timer is off in the lab: group_data/lab.py)."""
    return on(node, "systemctl start tos-session-policy.service && "
                    "journalctl -u tos-session-policy -n 5 --no-pager -o cat").stdout


def here(node: str) -> dict:
    """Each tenant's session on the node: running, paused or None."""
    return {s["tenant"]: s["here"] for s in json.loads(on(node, "tos-session report").stdout)["sessions"]}


def cpu_used(node: str) -> int:
    return int(on(node, f"grep ^usage_usec /sys/fs/cgroup/tos.slice/tos-tenant.slice/tos-tenant-{TENANT}.slice/"
                        "cpu.stat").stdout.split()[1])


def deploy(node: str, *data: str) -> None:
    run([PYINFRA, "-y", "inventories/lab.py", "deploy.py", "--limit", node,
         *[arg for pair in data for arg in ("--data", pair)]], 1800)


@pytest.mark.parametrize("gateway", GATEWAYS, ids=lambda h: h.name)
def test_a_person_walks_away_and_comes_back_to_the_same_session_on_another_node(gateway, delta_session):
    """The test above left the tab (signed out): delta's session has no client. The idle policy pauses
    it, hibernates it past delta's hibernate_after, and frees the node; the node is drained; signing
    in again restores it on the other node, as it was: Sectors, the Active App's own process, the
    counter carried on."""
    assert delta_session, "runs after the test above, which leaves delta's session and what it showed"
    left, url = delta_session, portal_url(gateway)
    node = left["node"]
    other = next(n for n in NODES if n != node)
    others_running = {t for t, state in here(node).items() if state == "running" and t != TENANT}
    held, shared_before = memory_held(node, TENANT)
    assert held > APP_BLOB_MB * 2**20  # control: the probe sees the session's memory
    try:
        paused = policy(node)
        assert here(node)[TENANT] == "paused", paused
        used = cpu_used(node)
        time.sleep(2)
        assert cpu_used(node) == used  # no CPU while paused (control: its counter moved each second before)
        time.sleep(21)  # past delta's hibernate_after (20 s in the lab's group_data)
        hibernated = policy(node)
        assert "hibernated to hib-" in hibernated and here(node)[TENANT] is None, hibernated
        assert_freed(node, TENANT, shared_before)
        deploy(node, "session_node_drained=true")
        assert json.loads(on(node, "tos-session report").stdout)["drained"] is True
        with chromium([GATEWAY_SERVER_NAME, VAULT_NAME], trusted()) as browser:
            sign_in(browser, url, PERSON, identity.password(VAULT.dir, PERSON))
            wait_for(browser, "p.approved", 120)
            assert desktop_says(browser, url) == ("ready", "restore", "your session is back as you left it.")
            assert where_running() == [other]
            wait_for(browser, f"#desktop[data-channel=open]:not([data-ticks='{left['ticks']}'])", 120)
            assert int(browser.find_element("css selector", "#desktop").get_attribute("data-ticks")) > left["ticks"]
            name, pid = left["app"]
            wait_for(browser, "#active-apps tbody tr td:nth-child(2)", 30)
            shown = {row.find_elements("css selector", "td")[0].text.lower(): row.find_elements("css selector", "td")[1]
                     .text.lower() for row in browser.find_elements("css selector", "#active-apps tbody tr")}
            assert shown[name.lower()] == f"pid {pid}", shown  # the same process, not launched again
            assert agent_path(other) == left["path"]
            app = json.loads(on(other, f"tos-session exec {TENANT} tos-session-ctl app {name}").stdout)
            assert app["pid"] == pid
            screenshot(browser, "lab-desktop-restored")
        log = on(gateway.name, "journalctl -u tos-portal -n 50 --no-pager -o cat").stdout
        assert f"session of {TENANT}: restore on {other}" in log, log[-2000:]
    finally:
        deploy(node)  # drained no more (the data says so)
        for tenant in others_running:  # the policy paused what the audits left running there
            if here(node).get(tenant) == "paused":
                on(node, f"tos-session resume {tenant}")
