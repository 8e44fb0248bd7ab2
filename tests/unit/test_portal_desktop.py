"""The desktop page and the call that has the broker bring a person's session up: signed in for real
(OpenBao as the provider, test_portal_sign_in's fixtures), nodes stood in for on loopback (real TLS
1.3, client certificate required). A person gets their own tenant's session, told in words that name
no node; nobody else gets one."""

import copy

import pytest
from cluster_doors import REPORT, NodeState, make_pki, serve
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
import test_portal_sign_in as signing_in
from test_portal_sign_in import PUBLIC, csrf_of, settings, sign_in

from toskit.gateway.portal.app import Portal
from toskit.gateway.portal.sessions import COOKIE

provider = signing_in.provider  # the fixture (OpenBao as the provider), for this module too


@pytest.fixture
def node1(tmp_path):
    pki = make_pki(tmp_path)
    report = copy.deepcopy(REPORT)
    report["sessions"].append({**report["sessions"][0], "tenant": "beta"})
    state = NodeState(report)
    door = {"name": "node1", "address": "127.0.0.1", "port": serve(pki, "node1", state=state)}
    return state, {"cluster_ca": str(pki / "ca.pem"), "client_certificate": str(pki / "gateway.pem"), "nodes": [door]}


def portal(provider, broker):
    tenants = [{"id": "acme", "enabled": True, "people": {"lab": ["alice@acme.test"]}, "memory": 1 << 30},
               {"id": "beta", "enabled": True, "people": {"lab": ["bob@beta.test"]}, "memory": 1 << 30}]
    return TestClient(Portal(settings(provider, tenants=tenants, broker=broker)).application(), base_url=PUBLIC,
                      follow_redirects=False)


def open_session(browser, csrf: str | None, origin: str = PUBLIC):
    return browser.post("/session/open", json={}, headers={"X-CSRF-Token": csrf or "", "Origin": origin})


def test_a_signed_in_person_gets_their_tenants_session_started_in_words_that_name_no_node(provider, node1):
    state, broker = node1
    with portal(provider, broker) as browser:
        sign_in(browser, provider, "alice")
        assert 'src="/static/desktop.js"' in browser.get("/desktop").text
        opened = open_session(browser, csrf_of(browser))
        assert opened.status_code == 200, opened.text
        assert opened.json() == {"action": "start", "message": "Your session was started."}
        assert state.changes == [("start", "acme")]
        again = open_session(browser, csrf_of(browser))  # a second tab: the same session, attached
        assert again.json()["action"] == "attach" and state.changes == [("start", "acme")]
        assert "node1" not in opened.text + again.text


@pytest.mark.parametrize("attempt", ["signed out", "no CSRF token", "another site"])
def test_no_session_is_brought_up_without_a_signed_in_person_of_this_site(provider, node1, attempt):
    state, broker = node1
    with portal(provider, broker) as browser:
        if attempt != "signed out":
            sign_in(browser, provider, "alice")
        csrf = csrf_of(browser) if attempt == "another site" else None
        refused = open_session(browser, csrf, origin="https://evil.test" if attempt == "another site" else PUBLIC)
        assert refused.status_code in (401, 403), refused.text
        assert state.changes == []
        if attempt == "signed out":
            assert browser.get("/desktop").headers["location"] == "/"


def test_a_node_that_cannot_take_it_is_a_plain_unavailable(provider, node1):
    state, broker = node1
    state.report["memory"]["available_bytes"] = 0
    with portal(provider, broker) as browser:
        sign_in(browser, provider, "alice")
        refused = open_session(browser, csrf_of(browser))
        assert refused.status_code == 503 and "node" not in refused.json()["error"]


class Opened(list):
    """The channels the portal opened to nodes, (node, tenant); `refusing`: nodes that refuse them."""


@pytest.fixture
def agents(tmp_path, monkeypatch):
    """Each tenant's real session agent on loopback, standing in for its channel through node1's API:
    the portal's hop to the node is the lab's to prove; here, who gets which session."""
    from tests.unit.session_agent import free_port, running_agent
    from websockets.asyncio.client import connect
    from toskit.gateway.portal import nodes
    opened = Opened()
    with running_agent("acme", tmp_path / "acme") as acme, running_agent("beta", tmp_path / "beta") as beta:
        ports = {"acme": acme, "beta": beta}

        def channel(context, door, tenant, timeout):
            opened.append((door.name, tenant))
            if door.name in refusing:
                return connect(f"ws://127.0.0.1:{free_port()}/", proxy=None, open_timeout=2)
            return connect(f"ws://127.0.0.1:{ports[tenant]}/", proxy=None)
        refusing = opened.refusing = set()
        monkeypatch.setattr(nodes, "channel", channel)
        yield opened


def channel(browser, origin: str | None = PUBLIC, path: str = "/session/channel"):
    """The test client sends its cookies only to http(s) URLs: the session's is handed over as a browser would."""
    cookie = browser.cookies.get(COOKIE)
    headers = {**({"Origin": origin} if origin else {}), **({"Cookie": f"{COOKIE}={cookie}"} if cookie else {})}
    return browser.websocket_connect(path, headers=headers)


def test_the_channel_carries_the_persons_own_session_both_ways(provider, node1, agents):
    state, broker = node1
    with portal(provider, broker) as browser:
        sign_in(browser, provider, "bob")
        with channel(browser) as desktop:
            assert desktop.receive_json()["tenant"] == "beta"
            desktop.send_json({"cmd": "push", "level": 1, "name": "Astrometrics"})
            assert desktop.receive_json()["path"][-1] == {"level": 1, "name": "Astrometrics"}
    assert agents == [("node1", "beta")] and state.changes == [("start", "beta")]


@pytest.mark.parametrize("path", ["/session/channel?tenant=acme", "/session/channel/../channel?t=acme"])
def test_no_url_gets_another_tenants_session(provider, node1, agents, path):
    state, broker = node1
    with portal(provider, broker) as browser:
        sign_in(browser, provider, "bob")
        with channel(browser, path=path) as desktop:
            assert desktop.receive_json()["tenant"] == "beta"
    assert agents == [("node1", "beta")]


@pytest.mark.parametrize("attempt", ["signed out", "another site", "no origin"])
def test_no_channel_without_a_signed_in_person_on_this_sites_page(provider, node1, agents, attempt):
    state, broker = node1
    with portal(provider, broker) as browser:
        if attempt != "signed out":
            sign_in(browser, provider, "alice")
        origin = {"another site": "https://evil.test", "no origin": None}.get(attempt, PUBLIC)
        with pytest.raises(WebSocketDisconnect) as refused:
            with channel(browser, origin):
                pass
        assert refused.value.code == 1008
    assert agents == [] and state.changes == []


def test_a_pages_channel_goes_where_the_session_was_brought_up_without_asking_every_node(provider, node1, agents):
    state, broker = node1
    with portal(provider, broker) as browser:
        sign_in(browser, provider, "bob")
        assert open_session(browser, csrf_of(browser)).json()["action"] == "start"
        asked = state.reports
        with channel(browser) as desktop:
            assert desktop.receive_json()["tenant"] == "beta"
        assert state.reports == asked
        # Control: the node no longer runs it (say, moved): the broker asks the nodes again.
        agents.refusing.add("node1")
        with pytest.raises(WebSocketDisconnect) as refused:
            with channel(browser):
                pass
        assert refused.value.code == 1013 and state.reports > asked


@pytest.mark.parametrize("who", ["the person, in another tab", "someone else"])
def test_a_sign_out_ends_the_persons_open_channels_and_no_one_elses(provider, node1, agents, who):
    """The cookie is checked when a channel opens; a sign-out later (another tab, the same cookie) must
    not leave the session's channel running on what is now nobody's say-so."""
    state, broker = node1
    with portal(provider, broker) as browser:
        sign_in(browser, provider, "bob")
        with channel(browser) as desktop:
            assert desktop.receive_json()["tenant"] == "beta"  # control: it carries frames
            if who == "someone else":  # another browser: its own cookie, its own sign-in
                browser.cookies.clear()
                sign_in(browser, provider, "alice")
            assert browser.post("/signout", data={"csrf": csrf_of(browser)},
                                headers={"origin": PUBLIC}).status_code == 303
            if who == "someone else":
                desktop.send_json({"cmd": "push", "level": 1, "name": "StillHere"})
                assert any(desktop.receive_json()["path"][-1:] == [{"level": 1, "name": "StillHere"}]
                           for _ in range(3))
                return
            with pytest.raises(WebSocketDisconnect) as ended:
                for _ in range(5):  # frames already on their way, then the close
                    desktop.receive_json()
            assert ended.value.code == 4401
