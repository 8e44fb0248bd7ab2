"""What the front-door benchmarks share: this machine as a browser of the lab's gateway (trusting
what a lab browser trusts), and the lab's dave signed in the way the portal's OIDC flow goes
(OpenBao's authorize endpoint with dave's own token stands in for its login page)."""

import re
import ssl
from contextlib import contextmanager
from urllib.parse import parse_qs, urlsplit

import httpx

from toskit.lab import identity
from toskit.lab.config import GATEWAY_SERVER_NAME, LabConfig
from toskit.lab.vault import LabVault

PERSON, TENANT = "dave", "delta"


def portal_url(config: LabConfig) -> str:
    gateway = next(h for h in config.hosts if h.group == "gateways")
    return f"https://{GATEWAY_SERVER_NAME}:{gateway.https_port}"


def tls(vault: LabVault) -> ssl.SSLContext:
    """This machine trusts what a lab browser trusts: the lab's CA (OpenBao) and Vault's gateway CA."""
    gateway_ca = vault.root_client().secrets.pki.read_ca_certificate(mount_point="pki")
    return ssl.create_default_context(cadata=vault.ca_file.read_text() + "\n" + gateway_ca)


class Browser:
    """dave's browser at the gateway, signed in: `open_session()` is the Desktop page's call."""

    def __init__(self, client: httpx.Client, portal: str):
        self.client, self.portal = client, portal
        self.by_name = {"extensions": {"sni_hostname": GATEWAY_SERVER_NAME}}

    def get(self, path: str, **kwargs) -> httpx.Response:
        return self.client.get(path, **self.by_name, **kwargs)

    def open_session(self) -> str:
        """POST /session/open as the Desktop page sends it; the broker's action."""
        csrf = re.search(r'<meta name="csrf" content="([^"]+)"', self.get("/desktop").text)[1]
        opened = self.client.post("/session/open", json={}, headers={"X-CSRF-Token": csrf, "Origin": self.portal},
                                  **self.by_name)
        assert opened.status_code == 200, opened.text
        return opened.json()["action"]


@contextmanager
def signed_in(vault: LabVault, portal: str, context: ssl.SSLContext):
    port = urlsplit(portal).port
    with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=context, timeout=900, trust_env=False,
                      headers={"Host": f"{GATEWAY_SERVER_NAME}:{port}"}) as client:
        browser = Browser(client, portal)
        start = browser.get("/auth/login/lab")
        query = {k: v[0] for k, v in parse_qs(urlsplit(start.headers["location"]).query).items()}
        token = vault.client().auth.userpass.login(PERSON, identity.password(vault.dir, PERSON))["auth"]["client_token"]
        code = vault.client(token).adapter.get(f"/v1/identity/oidc/provider/{identity.PROVIDER}/authorize",
                                               params=query)
        code = code if isinstance(code, dict) else code.json()
        done = browser.get("/auth/callback/lab", params={"code": code["code"], "state": code["state"]})
        assert done.status_code == 303 and done.headers["location"] == "/approved", done.text[:300]
        yield browser
