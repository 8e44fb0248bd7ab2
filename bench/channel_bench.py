"""make bench-channels: the lab's gateway under load, from this machine: CHANNELS session channels
(WebSockets) at once through one gateway, each held HOLD seconds, the whole run bounded by LIMIT.

It signs in once as the lab's dave (tenant delta) the way the portal's OIDC flow goes (OpenBao's
authorize endpoint with dave's own token stands in for the login page), has the broker bring the
session up, then opens every channel with that cookie (CHANNELS tabs of one person): gateway nginx,
portal relay, mutual TLS 1.3 to the node, node API relay, the session's agent. Each channel times
its opening (handshake done), its first frame, and one input's round trip (sent, until a frame
acknowledges it), and counts its frames. Targets: every channel opened, no error, frames flowing
(at least one each two seconds held), all within LIMIT. Needs a deployed lab with a gateway.
"""

import asyncio
import json
import os
import re
import ssl
import statistics
import time
from urllib.parse import parse_qs, urlsplit

import httpx
from websockets.asyncio.client import connect

from bench import report
from toskit.gateway.portal.sessions import COOKIE
from toskit.lab import identity
from toskit.lab.config import GATEWAY_SERVER_NAME, LabConfig
from toskit.lab.vault import LabVault

CHANNELS = int(os.environ.get("BENCH_CHANNELS", "200"))
HOLD = float(os.environ.get("BENCH_HOLD", "10"))  # seconds each channel stays open
LIMIT = float(os.environ.get("BENCH_LIMIT", "300"))  # seconds for the whole load
PERSON = "dave"


def tls(vault: LabVault) -> ssl.SSLContext:
    """This machine trusts what a lab browser trusts: the lab's CA (OpenBao) and Vault's gateway CA."""
    gateway_ca = vault.root_client().secrets.pki.read_ca_certificate(mount_point="pki")
    return ssl.create_default_context(cadata=vault.ca_file.read_text() + "\n" + gateway_ca)


def signed_in(vault: LabVault, portal: str, context: ssl.SSLContext) -> tuple:
    """(the session cookie, the page's CSRF token), dave signed in and his session brought up."""
    name, port = GATEWAY_SERVER_NAME, urlsplit(portal).port
    by_name = {"extensions": {"sni_hostname": name}}
    with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=context, headers={"Host": f"{name}:{port}"},
                      trust_env=False, timeout=60) as browser:
        start = browser.get("/auth/login/lab", **by_name)
        query = {k: v[0] for k, v in parse_qs(urlsplit(start.headers["location"]).query).items()}
        token = vault.client().auth.userpass.login(PERSON, identity.password(vault.dir, PERSON))["auth"]["client_token"]
        code = vault.client(token).adapter.get(f"/v1/identity/oidc/provider/{identity.PROVIDER}/authorize",
                                               params=query)
        code = code if isinstance(code, dict) else code.json()
        done = browser.get("/auth/callback/lab", params={"code": code["code"], "state": code["state"]}, **by_name)
        assert done.status_code == 303 and done.headers["location"] == "/approved", done.text[:300]
        csrf = re.search(r'<meta name="csrf" content="([^"]+)"', browser.get("/desktop", **by_name).text)[1]
        opened = browser.post("/session/open", json={}, headers={"X-CSRF-Token": csrf, "Origin": portal}, **by_name)
        assert opened.status_code == 200, opened.text
        return browser.cookies[COOKIE], opened.json()["action"]


async def one_channel(number: int, portal: str, cookie: str, context: ssl.SSLContext) -> dict:
    began = time.monotonic()
    async with connect(f"wss://127.0.0.1:{urlsplit(portal).port}/session/channel", ssl=context,
                       server_hostname=GATEWAY_SERVER_NAME, proxy=None, compression=None, open_timeout=LIMIT,
                       additional_headers={"Origin": portal, "Cookie": f"{COOKIE}={cookie}"}) as channel:
        opened = time.monotonic()
        json.loads(await channel.recv())
        first = time.monotonic()
        await channel.send(json.dumps({"cmd": "pop", "tab": f"bench-{number}", "seq": 1}))
        sent, frames, acked = time.monotonic(), 1, None
        while time.monotonic() < first + HOLD:
            frame = json.loads(await asyncio.wait_for(channel.recv(), 5))
            frames += 1
            if acked is None and frame.get("acked") == 1:
                acked = time.monotonic()
    return {"open": opened - began, "first_frame": first - began, "input_rtt": (acked or float("inf")) - sent,
            "frames": frames}


def percentiles(values: list) -> dict:
    cut = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": round(cut[49], 3), "p95": round(cut[94], 3), "p99": round(cut[98], 3), "max": round(max(values), 3)}


async def load(portal: str, cookie: str, context: ssl.SSLContext) -> list:
    runs = [one_channel(n, portal, cookie, context) for n in range(CHANNELS)]
    return await asyncio.wait_for(asyncio.gather(*runs, return_exceptions=True), LIMIT)


def main() -> int:
    config = LabConfig.from_env()
    vault = LabVault(config)
    gateway = next(h for h in config.hosts if h.group == "gateways")
    portal = f"https://{GATEWAY_SERVER_NAME}:{gateway.https_port}"
    context = tls(vault)
    cookie, action = signed_in(vault, portal, context)
    began = time.monotonic()
    results = asyncio.run(load(portal, cookie, context))
    elapsed = time.monotonic() - began
    done = [r for r in results if isinstance(r, dict)]
    errors = [f"{type(r).__name__}: {r}" for r in results if not isinstance(r, dict)]
    result = {
        "channels": CHANNELS, "hold_s": HOLD, "gateway": gateway.name, "session": action,
        "elapsed_s": round(elapsed, 1), "opened": len(done), "errors": len(errors),
        "error_kinds": sorted(set(errors))[:5],
        **({"open_s": percentiles([r["open"] for r in done]),
            "first_frame_s": percentiles([r["first_frame"] for r in done]),
            "input_rtt_s": percentiles([r["input_rtt"] for r in done]),
            "frames_min": min(r["frames"] for r in done)} if len(done) > 1 else {}),
    }
    result["targets"] = {"all_opened": len(done) == CHANNELS, "no_errors": not errors,
                         "frames_flowing": bool(done) and min(r["frames"] for r in done) >= HOLD / 2,
                         "inputs_acknowledged": bool(done) and all(r["input_rtt"] < HOLD for r in done)}
    return report("channels", result)


if __name__ == "__main__":
    raise SystemExit(main())
