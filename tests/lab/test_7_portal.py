"""The Level-0 portal on the lab's gateway, as a person meets it: a real browser on this machine
opens https://gateway.tos.lab through the gateway's forwarded port (TLS 1.3, the certificate
Vault's PKI signed), signs in on the lab's identity provider (OpenBao's login page), and is
approved; then what a gateway must refuse. (Its audits, tos-portal-01..05, ran in test_1.)"""

import http.client
import socket
import ssl
import time

import pytest
from browser import add_passkey, authenticator, chromium, passkey_sign_in, screenshot, sign_in, sign_out, wait_for
from front_door import GATEWAYS, VAULT, portal_url, trusted
from labtools import ON_NODE2_AND_GATEWAY, on

from toskit.lab import identity
from toskit.lab.config import GATEWAY_SERVER_NAME, GUEST_VAULT, VAULT_NAME

pytestmark = [pytest.mark.skipif(not GATEWAYS, reason="the lab has no gateway (TOS_LAB_GATEWAYS=0)"),
              *ON_NODE2_AND_GATEWAY]


def get(gateway, path: str) -> tuple:
    """GET through the gateway's front door (TLS 1.3, its name); (status, body)."""
    context = ssl.create_default_context(cadata=trusted()["tos-gateways"])
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    connection = http.client.HTTPSConnection(GATEWAY_SERVER_NAME, gateway.https_port, timeout=30, context=context)
    connection.sock = context.wrap_socket(socket.create_connection(("127.0.0.1", gateway.https_port), timeout=30),
                                          server_hostname=GATEWAY_SERVER_NAME)
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read().decode(errors="replace")
    connection.close()
    return response.status, body


def restart_portal(gateway) -> None:
    """Restarts the portal and waits until it answers (systemd reports it started before uvicorn listens)."""
    on(gateway.name, "systemctl restart tos-portal.service")
    deadline = time.monotonic() + 90
    while get(gateway, "/")[0] != 200:
        assert time.monotonic() < deadline, "the portal did not answer within 90 s of its restart"
        time.sleep(1)


@pytest.mark.parametrize("gateway", GATEWAYS, ids=lambda h: h.name)
def test_a_person_signs_in_through_the_gateway_then_with_a_passkey_alone(gateway):
    """The relying party is the gateway's real name and origin; the passkey lands in Vault."""
    url = portal_url(gateway)
    with chromium([GATEWAY_SERVER_NAME, VAULT_NAME], trusted()) as browser:
        browser.get(url + "/")
        wait_for(browser, "ul.choices")
        screenshot(browser, "lab-level0")
        sign_in(browser, url, "alice", identity.password(VAULT.dir, "alice"))
        assert wait_for(browser, "p.approved", 120).text == "AUTHORIZATION APPROVED"
        assert "acme" in browser.find_element("css selector", "dl.readout").text.lower()
        screenshot(browser, "lab-authorization-approved")
        authenticator(browser)
        add_passkey(browser, url, "lab browser")
        sign_out(browser, url)
        passkey_sign_in(browser, url)
        assert wait_for(browser, "p.approved", 120).text == "AUTHORIZATION APPROVED"
        assert "passkey" in browser.find_element("css selector", "dl.readout").text.lower()


@pytest.mark.parametrize("gateway", GATEWAYS, ids=lambda h: h.name)
def test_a_person_of_no_tenant_is_denied_at_the_gateway(gateway):
    with chromium([GATEWAY_SERVER_NAME, VAULT_NAME], trusted()) as browser:
        sign_in(browser, portal_url(gateway), identity.OUTSIDER.username,
                identity.password(VAULT.dir, identity.OUTSIDER.username))
        assert wait_for(browser, "[role=alert]", 120).text == "ACCESS DENIED"
        browser.get(portal_url(gateway) + "/approved")
        assert browser.current_url == portal_url(gateway) + "/"


@pytest.mark.parametrize("gateway", GATEWAYS, ids=lambda h: h.name)
def test_sign_in_fails_closed_without_vault(gateway):
    """A portal started while Vault is out of reach cannot read its client secret: it refuses the
    sign-in with a clear page. Control: the same request before, with Vault there, goes on to the
    provider."""
    assert get(gateway, "/auth/login/lab")[0] == 302
    on(gateway.name, f"ip route add blackhole {GUEST_VAULT}/32")
    try:
        restart_portal(gateway)
        status, body = get(gateway, "/auth/login/lab")
    finally:
        on(gateway.name, f"ip route del blackhole {GUEST_VAULT}/32")
        restart_portal(gateway)
    assert status == 503 and "unavailable" in body.lower(), (status, body[:300])


@pytest.mark.parametrize("gateway", GATEWAYS, ids=lambda h: h.name)
def test_sign_in_attempts_beyond_the_rate_are_refused(gateway):
    """nginx's limit on /auth/ (portal_sign_in_rate a minute, burst 10). Run last: the lab's
    requests all come from one address, which then waits a minute. The refusals are judged as they
    come: the bucket frees a place every 60/rate s (3 s at the default 20), so a request sent after
    the run may rightly pass (CI23: the 31st, 3.1 s after the first, got 302)."""
    responses = [get(gateway, "/auth/login/lab") for _ in range(30)]
    statuses = [status for status, _ in responses]
    assert statuses[0] == 302  # control: a sign-in starts
    refused = [body for status, body in responses if status == 429]
    assert refused, statuses
    assert all("Too many attempts" in body for body in refused)  # the portal's page, not nginx's
