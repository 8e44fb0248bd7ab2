"""make bench-front-door: what the front door adds to bringing a session up. For dave's session
(tenant delta) running, paused and hibernated, from the moment he is signed in to his Desktop's
first frame: the page's POST /session/open (the broker's round of reports, then attach, resume or
restore on a node) and its channel (gateway, portal, mutual TLS 1.3 to the node, node API, agent)
until the first frame arrives. Beside it, in the same run and for the same session, the raw
restore: `tos-session restore` timed on the node itself. Target (issue 11): a hibernated session's
sign-in-to-first-frame within 1 s of the raw restore. Needs a deployed lab with a gateway; leaves
delta's session stopped.
"""

import asyncio
import json
import time
from urllib.parse import urlsplit

from websockets.asyncio.client import connect

from bench import on, report
from bench.front_door import TENANT, portal_url, signed_in, tls
from toskit.gateway.portal.sessions import COOKIE
from toskit.lab.config import GATEWAY_SERVER_NAME, LabConfig
from toskit.lab.vault import LabVault

OVERHEAD_TARGET = 1.0  # seconds the front door may add to a restore


def nodes(config: LabConfig) -> list:
    return [h.name for h in config.hosts if h.group == "nodes"]


def where(config: LabConfig) -> str:
    """The node delta's session is live on (running or paused), by each node's own report."""
    for node in nodes(config):
        report = json.loads(on(config, node, f"tos-session report {TENANT}"))
        if any(s["here"] in ("running", "paused") for s in report["sessions"]):
            return node
    raise SystemExit("bench: delta's session is live on no node")


async def first_frame(portal: str, cookie: str, context) -> float:
    async with connect(f"wss://127.0.0.1:{urlsplit(portal).port}/session/channel", ssl=context,
                       server_hostname=GATEWAY_SERVER_NAME, proxy=None, compression=None, open_timeout=120,
                       additional_headers={"Origin": portal, "Cookie": f"{COOKIE}={cookie}"}) as channel:
        frame = json.loads(await asyncio.wait_for(channel.recv(), 60))
    assert frame["type"] == "frame" and frame["tenant"] == TENANT, frame
    return time.monotonic()


def to_first_frame(browser, portal: str, context) -> dict:
    """Seconds from signed in to the first frame, the broker's action, and the /session/open part."""
    began = time.monotonic()
    action = browser.open_session()
    opened = time.monotonic()
    done = asyncio.run(first_frame(portal, browser.client.cookies[COOKIE], context))
    return {"to_first_frame_s": round(done - began, 3), "action": action, "open_s": round(opened - began, 3)}


def raw(config: LabConfig, node: str, verb: str) -> float:
    """`tos-session VERB delta` timed on the node by its shell's clock (no ssh in it)."""
    out = on(config, node, f"s=$EPOCHREALTIME; tos-session {verb} {TENANT} >&2; echo \"elapsed $s $EPOCHREALTIME\"")
    if verb == "restore":
        assert "restored from hib-" in out and "COLD START" not in out, out
    began, ended = out.rsplit("elapsed", 1)[1].split()
    return round(float(ended) - float(began), 3)


def main() -> int:
    config = LabConfig.from_env()
    vault = LabVault(config)
    portal, context = portal_url(config), tls(vault)
    for node in nodes(config):
        on(config, node, f"tos-session stop {TENANT} || true")
    result = {}
    try:
        with signed_in(vault, portal, context) as browser:
            result["stopped"] = to_first_frame(browser, portal, context)
            result["running"] = to_first_frame(browser, portal, context)
            on(config, where(config), f"tos-session pause {TENANT}")
            result["paused"] = to_first_frame(browser, portal, context)
            raw(config, where(config), "hibernate")
            result["hibernated"] = to_first_frame(browser, portal, context)
            node = where(config)
            result["hibernate_raw_s"] = raw(config, node, "hibernate")
            result["restore_raw_s"] = raw(config, node, "restore")
    finally:
        for node in nodes(config):
            on(config, node, f"tos-session stop {TENANT} || true")
    added = round(result["hibernated"]["to_first_frame_s"] - result["restore_raw_s"], 3)
    result["front_door_adds_to_restore_s"] = added
    result["targets"] = {
        "actions_as_expected": [result[s]["action"] for s in ("stopped", "running", "paused", "hibernated")]
        == ["start", "attach", "resume", "restore"],
        "front_door_adds_under_1s": added < OVERHEAD_TARGET}
    return report("front-door", result)


if __name__ == "__main__":
    raise SystemExit(main())
