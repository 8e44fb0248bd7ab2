"""The portal's OIDC sign-in against a real provider: OpenBao's identity/oidc provider (as in the lab).

The browser's part is played by httpx (starlette's TestClient): the person logs in to OpenBao
(userpass) and OpenBao's authorize API gives the code a browser would carry back. The portal does
the rest for real: discovery, PKCE, the code exchange, the ID token's signature from the JWKS.
"""

import base64
import hashlib
import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest

pytest.importorskip("starlette")
from starlette.testclient import TestClient  # noqa: E402

from toskit.gateway.portal.app import Portal  # noqa: E402
from toskit.gateway.portal.sessions import COOKIE  # noqa: E402
from toskit.gateway.portal.settings import parse  # noqa: E402
from toskit.lab import identity  # noqa: E402
from toskit.vault import enable_kv_v2  # noqa: E402

PUBLIC = "https://gateway.test"
PEOPLE = [identity.LabPerson("alice", "alice@acme.test"), identity.LabPerson("bob", "bob@beta.test"),
          identity.LabPerson("mallory", "mallory@nowhere.test")]


@pytest.fixture(scope="module")
def provider(running_vault, tmp_path_factory):
    """OpenBao as the provider, the client secret in KV, and an AppRole the portal reads it with."""
    root = running_vault.root_client()
    state = tmp_path_factory.mktemp("identity")
    made = identity.apply(root, state, running_vault.url, [f"{PUBLIC}/auth/callback/lab"], PEOPLE)
    # `lab up` again: the same provider, client and people (passwords kept).
    passwords = (state / "people.json").read_text()
    assert identity.apply(root, state, running_vault.url, [f"{PUBLIC}/auth/callback/lab"], PEOPLE) == made
    assert (state / "people.json").read_text() == passwords
    if "secret/" not in root.sys.list_mounted_secrets_engines()["data"]:
        enable_kv_v2(root, "secret", "tos/portal/oidc/lab")
    root.secrets.kv.v2.create_or_update_secret("tos/portal/oidc/lab", {"client_secret": made["client_secret"]},
                                               mount_point="secret")
    root.sys.create_or_update_acl_policy("tos-portal-test", 'path "secret/data/tos/portal/oidc/*" '
                                         '{ capabilities = ["read"] }')
    if "approle/" not in root.sys.list_auth_methods()["data"]:
        root.sys.enable_auth_method("approle")
    root.auth.approle.create_or_update_approle("tos-portal-test", token_policies=["tos-portal-test"])
    creds = tmp_path_factory.mktemp("creds")
    (creds / "role-id").write_text(root.auth.approle.read_role_id("tos-portal-test")["data"]["role_id"])
    (creds / "secret-id").write_text(root.auth.approle.generate_secret_id("tos-portal-test")["data"]["secret_id"])
    return {**made, "vault": running_vault, "state": state, "creds": creds}


def settings(provider, **changes):
    raw = {
        "public_url": PUBLIC, "title": "TOS",
        "providers": [{"name": "lab", "title": "TOS Lab SSO", "kind": "oidc", "issuer": provider["issuer"],
                       "client_id": provider["client_id"], "scopes": ["openid", "email", "profile"],
                       "claim": "email", "ca_file": str(provider["vault"].ca_file)}],
        "tenants": [{"id": "acme", "enabled": True, "people": {"lab": ["alice@acme.test"]}},
                    {"id": "beta", "enabled": False, "people": {"lab": ["bob@beta.test"]}}],
        "vault": {"addr": provider["vault"].url, "ca_file": str(provider["vault"].ca_file),
                  "approle_mount": "approle", "kv_mount": "secret", "kv_prefix": "tos/portal",
                  "credentials": str(provider["creds"])},
    }
    raw.update(changes)
    return parse(raw)


@pytest.fixture
def browser(provider):
    with TestClient(Portal(settings(provider)).application(), base_url=PUBLIC, follow_redirects=False) as client:
        yield client


def person_token(provider, username) -> str:
    client = provider["vault"].client()
    return client.auth.userpass.login(username, identity.password(provider["state"], username))["auth"]["client_token"]


def authorize(provider, username, redirect: str) -> dict:
    """What OpenBao's login page does in a browser: the signed-in person authorizes the request."""
    query = {k: v[0] for k, v in parse_qs(urlsplit(redirect).query).items()}
    client = provider["vault"].client(person_token(provider, username))
    reply = client.adapter.get(f"/v1/identity/oidc/provider/{identity.PROVIDER}/authorize", params=query)
    return reply if isinstance(reply, dict) else reply.json()


def sign_in(browser, provider, username):
    start = browser.get("/auth/login/lab")
    assert start.status_code == 302, start.text
    code = authorize(provider, username, start.headers["location"])
    return browser.get("/auth/callback/lab", params={"code": code["code"], "state": code["state"]}), start


def test_the_level0_view_offers_each_provider_and_no_script_from_elsewhere(browser):
    page = browser.get("/")
    assert page.status_code == 200
    assert 'href="/auth/login/lab"' in page.text and "TOS Lab SSO" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "<script>" not in page.text and "style=" not in page.text


def test_the_sign_in_request_carries_state_nonce_and_a_pkce_challenge(browser, provider):
    start = browser.get("/auth/login/lab")
    query = parse_qs(urlsplit(start.headers["location"]).query)
    assert start.headers["location"].startswith(provider["vault"].url)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert len(query["state"][0]) >= 20 and len(query["nonce"][0]) >= 20
    assert query["redirect_uri"] == [f"{PUBLIC}/auth/callback/lab"]
    cookie = start.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_a_person_of_an_enabled_tenant_is_approved_and_gets_a_new_session_id(browser, provider):
    done, start = sign_in(browser, provider, "alice")
    assert done.status_code == 303 and done.headers["location"] == "/approved"
    assert done.cookies[COOKIE] != start.cookies[COOKIE]  # no fixation: a new id at sign-in
    page = browser.get("/approved")
    assert page.status_code == 200 and "Authorization approved" in page.text and "acme" in page.text


def test_the_control_a_person_of_no_tenant_is_denied(browser, provider):
    done, _ = sign_in(browser, provider, "mallory")
    assert done.status_code == 403 and "Access denied" in done.text
    assert browser.get("/approved").headers["location"] == "/"


def test_a_person_of_a_disabled_tenant_is_denied(browser, provider):
    done, _ = sign_in(browser, provider, "bob")
    assert done.status_code == 403 and "Access denied" in done.text


def test_a_forged_state_is_refused(browser, provider):
    start = browser.get("/auth/login/lab")
    code = authorize(provider, "alice", start.headers["location"])
    done = browser.get("/auth/callback/lab", params={"code": code["code"], "state": "forged" + code["state"]})
    assert done.status_code == 400 and browser.get("/approved").headers["location"] == "/"


def test_a_callback_is_good_once(browser, provider):
    """A replayed callback (the same code and state again) finds no sign-in under way."""
    start = browser.get("/auth/login/lab")
    code = authorize(provider, "alice", start.headers["location"])
    assert browser.get("/auth/callback/lab", params=code).status_code == 303  # control
    assert browser.get("/auth/callback/lab", params=code).status_code == 400


def test_a_code_with_another_sign_ins_state_is_refused(browser, provider):
    first = browser.get("/auth/login/lab")
    code = authorize(provider, "alice", first.headers["location"])
    again = browser.get("/auth/login/lab")  # replaces the first's state (and its PKCE verifier)
    state = parse_qs(urlsplit(again.headers["location"]).query)["state"][0]
    assert browser.get("/auth/callback/lab", params={"code": code["code"], "state": state}).status_code == 400


def test_a_callback_from_another_browser_is_refused(browser, provider):
    start = browser.get("/auth/login/lab")
    code = authorize(provider, "alice", start.headers["location"])
    browser.cookies.clear()  # another browser: without this one's session cookie
    assert browser.get("/auth/callback/lab", params=code).status_code == 400


def csrf_of(browser) -> str:
    page = browser.get("/approved").text
    return page.split('name="csrf" value="')[1].split('"')[0]


def test_sign_out_ends_the_session_on_the_server(browser, provider):
    sign_in(browser, provider, "alice")
    stolen = browser.cookies[COOKIE]
    out = browser.post("/signout", data={"csrf": csrf_of(browser)}, headers={"origin": PUBLIC})
    assert out.status_code == 303
    browser.cookies.set(COOKIE, stolen, domain="gateway.test")  # the copied cookie, presented again
    assert browser.get("/approved").headers["location"] == "/"


@pytest.mark.parametrize("attempt", ["no token", "wrong token", "other origin"])
def test_sign_out_without_the_pages_csrf_token_or_from_another_site_is_refused(browser, provider, attempt):
    sign_in(browser, provider, "alice")
    token = csrf_of(browser)
    data = {} if attempt == "no token" else {"csrf": "x" + token if attempt == "wrong token" else token}
    origin = "https://evil.test" if attempt == "other origin" else PUBLIC
    assert browser.post("/signout", data=data, headers={"origin": origin}).status_code == 403
    assert browser.get("/approved").status_code == 200  # still signed in


def test_a_tampered_session_cookie_is_no_session(browser, provider):
    sign_in(browser, provider, "alice")
    cookie = browser.cookies[COOKIE]
    browser.cookies.set(COOKIE, cookie[:-2] + ("AA" if cookie[-2:] != "AA" else "BB"), domain="gateway.test")
    assert browser.get("/approved").headers["location"] == "/"


def _forge(header: dict, claims: dict) -> str:
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
    return f"{enc(header)}.{enc(claims)}.{base64.urlsafe_b64encode(hashlib.sha256(b'x').digest()).rstrip(b'=').decode()}"


def test_an_id_token_not_signed_by_the_provider_is_refused(provider, monkeypatch, caplog):
    """The code exchange answered with a token whose signature is not the provider's."""
    from authlib.integrations.starlette_client import StarletteOAuth2App
    real = StarletteOAuth2App.fetch_access_token

    async def forged(self, **kwargs):
        token = await real(self, **kwargs)
        header, claims = (json.loads(base64.urlsafe_b64decode(p + "==")) for p in token["id_token"].split(".")[:2])
        token["id_token"] = _forge(header, {**claims, "exp": int(time.time()) + 3600})
        return token

    monkeypatch.setattr(StarletteOAuth2App, "fetch_access_token", forged)
    with TestClient(Portal(settings(provider)).application(), base_url=PUBLIC, follow_redirects=False) as browser:
        done, _ = sign_in(browser, provider, "alice")
    assert done.status_code == 400 and "BadSignatureError" in caplog.text


def test_vault_unreachable_refuses_the_sign_in(provider, tmp_path):
    unreachable = settings(provider)
    unreachable = parse({**json.loads(json.dumps(_raw(unreachable))), "vault": {
        **_raw(unreachable)["vault"], "addr": "https://127.0.0.1:9"}})
    with TestClient(Portal(unreachable).application(), base_url=PUBLIC, follow_redirects=False) as browser:
        page = browser.get("/auth/login/lab")
    assert page.status_code == 503 and "unavailable" in page.text


def _raw(settings_) -> dict:
    from dataclasses import asdict
    return asdict(settings_)


def test_an_email_the_provider_does_not_vouch_for_is_refused(provider, browser):
    root = provider["vault"].root_client()
    root.write_data("identity/oidc/scope/email", data={"template": '{"email": {{identity.entity.metadata.email}}}'})
    try:
        done, _ = sign_in(browser, provider, "alice")
    finally:
        root.write_data("identity/oidc/scope/email", data={"template": identity.SCOPES["email"]})
    assert done.status_code == 400
    assert sign_in(browser, provider, "alice")[0].status_code == 303  # control: vouched for again


def test_a_person_found_in_two_tenants_is_denied(provider, caplog):
    """E-mail addresses compare without case, so these two lists name the same person."""
    raw = _raw(settings(provider))
    raw["tenants"] = [{"id": "acme", "enabled": True, "people": {"lab": ["alice@acme.test"]}},
                      {"id": "gamma", "enabled": True, "people": {"lab": ["ALICE@acme.test"]}}]
    with TestClient(Portal(parse(raw)).application(), base_url=PUBLIC, follow_redirects=False) as browser:
        done, _ = sign_in(browser, provider, "alice")
    assert done.status_code == 403 and "2 tenants (acme, gamma)" in caplog.text


def test_a_providers_error_answer_is_logged_on_one_line(browser, caplog):
    forged = "x\nINFO tos-portal: signed in: lab subject admin, tenant acme"
    assert browser.get("/auth/callback/lab", params={"error": "denied", "error_description": forged}).status_code == 400
    assert not [r for r in caplog.records if "\n" in r.getMessage()]


@pytest.mark.parametrize("case,status", [("valid", 303), ("expired", 400), ("another audience", 400),
                                         ("another issuer", 400), ("no signature", 400)])
def test_the_id_tokens_times_audience_issuer_and_algorithm_are_checked(provider, monkeypatch, case, status):
    """The provider's real claims, re-signed with a key this test publishes as the provider's (its
    JWKS replaced): so each claim can be changed alone. "valid" is the control."""
    from authlib.integrations.starlette_client import StarletteOAuth2App
    from authlib.jose import JsonWebKey, jwt
    key = JsonWebKey.generate_key("EC", "P-256", is_private=True, options={"kid": "test"})
    monkeypatch.setattr(StarletteOAuth2App, "fetch_jwk_set",
                        lambda self, force=False: _async({"keys": [key.as_dict(is_private=False)]}))
    real = StarletteOAuth2App.fetch_access_token

    async def resigned(self, **kwargs):
        token = await real(self, **kwargs)
        claims = json.loads(base64.urlsafe_b64decode(token["id_token"].split(".")[1] + "=="))
        now = int(time.time())
        claims.update({"expired": {"exp": now - 600, "iat": now - 1200}, "another audience": {"aud": "someone-else"},
                       "another issuer": {"iss": "https://evil.test"}}.get(case, {}))
        if case == "no signature":
            header = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
            body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
            token["id_token"] = f"{header}.{body}."
        else:
            token["id_token"] = jwt.encode({"alg": "ES256", "kid": "test"}, claims, key).decode()
        return token

    monkeypatch.setattr(StarletteOAuth2App, "fetch_access_token", resigned)
    with TestClient(Portal(settings(provider)).application(), base_url=PUBLIC, follow_redirects=False) as browser:
        done, _ = sign_in(browser, provider, "alice")
    assert done.status_code == status


async def _async(value):
    return value
