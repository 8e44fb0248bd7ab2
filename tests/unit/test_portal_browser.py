"""The Level-0 view and sign-in in a real browser (Debian's chromium, selenium), on this machine:
the portal served by uvicorn over TLS as gateway.tos.lab, OpenBao as the identity provider with
its own login page. Screenshots land in docs/screenshots/ (the README shows them)."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from toskit.lab import identity, keys
from toskit.vault import enable_kv_v2
from toskit.vault_portal import PortalAccess

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))
from browser import (CHROMEDRIVER, CHROMIUM, add_passkey, authenticator, chromium, passkey_sign_in,  # noqa: E402
                     screenshot, sign_in, sign_out, until, wait_for)

pytestmark = pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                                reason="no chromium/chromedriver (apt install chromium chromium-driver)")
pytest.importorskip("selenium")
from selenium.webdriver.common.by import By  # noqa: E402

# The provider by "localhost" here (its certificate names it): the portal, a process on this
# machine, resolves names by the system's resolver (in the lab, the gateway's base_hosts).
GATEWAY, VAULT = "gateway.tos.lab", "localhost"
PEOPLE = [identity.LabPerson("alice", "alice@acme.test"), identity.OUTSIDER]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def front_door(running_vault, tmp_path_factory):
    """OpenBao as the provider (issuer https://vault.tos.lab:<port>), the portal behind TLS."""
    root, port = running_vault.root_client(), free_port()
    public = f"https://{GATEWAY}:{port}"
    vault_port = running_vault.url.rsplit(":", 1)[1]
    made = identity.apply(root, running_vault.dir, f"https://{VAULT}:{vault_port}",
                          [f"{public}/auth/callback/lab"], PEOPLE)
    if "tos-kv/" not in root.sys.list_mounted_secrets_engines()["data"]:
        enable_kv_v2(root, "tos-kv", "tos/portal/oidc/lab")
    root.secrets.kv.v2.create_or_update_secret("tos/portal/oidc/lab", {"client_secret": made["client_secret"]},
                                               mount_point="tos-kv")
    # The policy the portal role writes (toskit/vault_portal.py), nothing more.
    root.sys.create_or_update_acl_policy("tos-portal-browser", PortalAccess("browser", "127.0.0.1/32", "tos-kv",
                                                                            "tos/portal", "1h").policy())
    if "approle/" not in root.sys.list_auth_methods()["data"]:
        root.sys.enable_auth_method("approle")
    root.auth.approle.create_or_update_approle("tos-portal-browser", token_policies=["tos-portal-browser"])
    work = tmp_path_factory.mktemp("portal")
    keys.write_secret(work / "role-id", root.auth.approle.read_role_id("tos-portal-browser")["data"]["role_id"].encode())
    keys.write_secret(work / "secret-id",
                      root.auth.approle.generate_secret_id("tos-portal-browser")["data"]["secret_id"].encode())
    ca_dir = running_vault.config.state_dir / "ca"
    cert, key = keys.issue_server_cert(ca_dir, work / "tls", GATEWAY, dns=[GATEWAY], ips=[])
    ca = str(ca_dir / "ca.pem")
    (work / "portal.json").write_text(json.dumps({
        "public_url": public, "title": "TOS",
        "providers": [{"name": "lab", "title": "TOS Lab SSO", "kind": "oidc", "issuer": made["issuer"],
                       "client_id": made["client_id"], "scopes": ["openid", "email", "profile"], "claim": "email",
                       "ca_file": ca}],
        "tenants": [{"id": "acme", "enabled": True, "people": {"lab": ["alice@acme.test"]}}],
        "vault": {"addr": running_vault.url, "ca_file": ca, "approle_mount": "approle", "kv_mount": "tos-kv",
                  "kv_prefix": "tos/portal", "credentials": str(work)}}))
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "portal_server:app", "--app-dir", str(Path(__file__).parent),
         "--host", "127.0.0.1", "--port", str(port), "--ssl-certfile", str(cert), "--ssl-keyfile", str(key),
         "--no-access-log"],
        env={**os.environ, "TOS_PORTAL_SETTINGS": str(work / "portal.json"),
             "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert server.poll() is None and time.monotonic() < deadline, server.stdout.read().decode()
            time.sleep(0.2)
        yield {"url": public, "ca": Path(ca).read_text(), "vault": running_vault}
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture
def browser(front_door):
    with chromium([GATEWAY, VAULT], {"tos-lab": front_door["ca"]}) as driver:
        yield driver


def test_level0_offers_the_providers(browser, front_door):
    browser.get(front_door["url"] + "/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "IDENTIFY"
    button = browser.find_element(By.LINK_TEXT, "SIGN IN WITH TOS LAB SSO")
    button.send_keys("")  # reachable by keyboard: it takes focus
    assert browser.switch_to.active_element == button
    screenshot(browser, "level0")


def test_a_tenants_person_signs_in_through_the_provider_and_out_again(browser, front_door):
    sign_in(browser, front_door["url"], "alice", identity.password(front_door["vault"].dir, "alice"))
    status = wait_for(browser, "p.approved")
    assert status.text == "AUTHORIZATION APPROVED" and browser.current_url == front_door["url"] + "/approved"
    assert "acme" in browser.find_element(By.CSS_SELECTOR, "dl.readout").text.lower()
    screenshot(browser, "authorization-approved")
    browser.find_element(By.CSS_SELECTOR, "form[action='/signout'] button").click()
    wait_for(browser, "ul.choices")
    browser.get(front_door["url"] + "/approved")
    assert browser.current_url == front_door["url"] + "/"  # the session is gone


def test_a_person_of_no_tenant_sees_access_denied(browser, front_door):
    sign_in(browser, front_door["url"], identity.OUTSIDER.username,
            identity.password(front_door["vault"].dir, identity.OUTSIDER.username))
    assert wait_for(browser, "[role=alert]").text == "ACCESS DENIED"
    screenshot(browser, "access-denied")
    browser.get(front_door["url"] + "/approved")
    assert browser.current_url == front_door["url"] + "/"


def test_passkeys_several_per_person_then_a_sign_in_with_a_passkey_alone(browser, front_door):
    sign_in(browser, front_door["url"], "alice", identity.password(front_door["vault"].dir, "alice"))
    wait_for(browser, "p.approved")
    authenticator(browser)
    add_passkey(browser, front_door["url"], "laptop")
    browser.remove_virtual_authenticator()  # the laptop is elsewhere now; a phone joins
    authenticator(browser)
    add_passkey(browser, front_door["url"], "phone")
    rows = browser.find_elements(By.CSS_SELECTOR, "table.readout-table tbody tr")
    assert [r.find_element(By.TAG_NAME, "td").text for r in rows] == ["laptop", "phone"]
    screenshot(browser, "passkeys")
    sign_out(browser, front_door["url"])

    passkey_sign_in(browser, front_door["url"])  # the phone's passkey, and nothing else
    assert wait_for(browser, "p.approved").text == "AUTHORIZATION APPROVED"
    assert "acme" in browser.find_element(By.CSS_SELECTOR, "dl.readout").text.lower()
    screenshot(browser, "passkey-authorization-approved")


def test_a_removed_passkey_no_longer_signs_in(browser, front_door):
    sign_in(browser, front_door["url"], "alice", identity.password(front_door["vault"].dir, "alice"))
    wait_for(browser, "p.approved")
    authenticator(browser)
    add_passkey(browser, front_door["url"], "tablet")
    browser.find_element(By.CSS_SELECTOR, "button[aria-label='Remove passkey tablet']").click()
    until(browser, lambda d: "tablet" not in d.find_element(By.TAG_NAME, "main").text)
    sign_out(browser, front_door["url"])
    passkey_sign_in(browser, front_door["url"])  # the authenticator still holds it; the server does not
    until(browser, lambda d: "failed" in d.find_element(By.ID, "passkey-status").text.lower())
    browser.get(front_door["url"] + "/approved")
    assert browser.current_url == front_door["url"] + "/"
