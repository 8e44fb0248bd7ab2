"""make bench-front-door: what the front door adds to bringing a session up. For dave's session
(tenant delta) running, paused and hibernated, from the moment he is signed in to his Desktop's
first frame: the page's POST /session/open (the broker's round of reports, then attach, resume or
restore on a node) and its channel (gateway, portal, mutual TLS 1.3 to the node, node API, agent)
until the first frame arrives. What the front door adds to a restore is measured on the same
restore: its sign-in-to-first-frame less the node's own `tos-session restore` in it (the node API's
journal times each change), since two restores of one session under emulation differ by seconds.
Beside it, in the same run, the raw restore: `tos-session restore` alone on the same node, timed by
the node's shell. ROUNDS rounds. Target (issue 11): the front door adds under 1 s to a hibernated
session's restore, as the median of the rounds.
Needs a deployed lab with a gateway; leaves delta's session stopped.
"""

import asyncio
import json
import os
import re
import statistics
import time
from urllib.parse import urlsplit

from websockets.asyncio.client import connect

from bench import on, report
from bench.front_door import TENANT, portal_url, signed_in, tls
from toskit.gateway.portal.sessions import COOKIE
from toskit.lab.config import GATEWAY_SERVER_NAME, LabConfig
from toskit.lab.vault import LabVault

OVERHEAD_TARGET = 1.0  # seconds the front door may add to a restore (the median of the rounds)
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))  # restores through the front door, each beside one alone


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
    began, ended = re.search(r"^elapsed (\S+) (\S+)$", out, re.MULTILINE).groups()
    return round(float(ended) - float(began), 3)


def stopped(config: LabConfig) -> None:
    """No session of delta anywhere, and no checkpoint (a stopped hibernated session would restore)."""
    for node in nodes(config):
        on(config, node, f"tos-session stop {TENANT} || true")
    report = json.loads(on(config, nodes(config)[0], f"tos-session report {TENANT}"))
    if any(s["state"] == "hibernated" for s in report["sessions"]):
        on(config, nodes(config)[0], f"tos-session restore {TENANT} && tos-session stop {TENANT}")


def journal_cursor(config: LabConfig, node: str) -> str:
    """Where the node API's journal ends now."""
    out = on(config, node, "journalctl -u tos-node-api -n 1 -o cat --show-cursor")
    return re.search(r"^-- cursor: (\S+)$", out, re.MULTILINE).group(1)


def restored_on_node(config: LabConfig, node: str, cursor: str) -> float:
    """Seconds the node API's `tos-session restore` took, by its journal after `cursor`: the node's
    own part of a restore asked through the front door."""
    out = on(config, node, f"journalctl -u tos-node-api -o cat --after-cursor='{cursor}'")
    seconds = re.findall(rf"^restore {TENANT}: exit 0 in (\S+) s$", out, re.MULTILINE)
    assert len(seconds) == 1, out
    return float(seconds[0])


def restore_round(config: LabConfig, browser, portal: str, context) -> dict:
    """Hibernated, then signed in to first frame (the broker restores it where placement says); what
    the front door added is that time less the node's own `tos-session restore` in it. Then hibernated
    again there and restored by `tos-session restore` alone: the raw restore beside it."""
    raw(config, where(config), "hibernate")
    cursors = {node: journal_cursor(config, node) for node in nodes(config)}
    through = to_first_frame(browser, portal, context)
    node = where(config)
    on_node = restored_on_node(config, node, cursors[node])
    raw(config, node, "hibernate")
    alone = raw(config, node, "restore")
    return {**through, "node": node, "restore_on_node_s": on_node, "restore_raw_s": alone,
            "adds_s": round(through["to_first_frame_s"] - on_node, 3)}


def main() -> int:
    config = LabConfig.from_env()
    vault = LabVault(config)
    portal, context = portal_url(config), tls(vault)
    stopped(config)
    result = {}
    try:
        with signed_in(vault, portal, context) as browser:
            result["stopped"] = to_first_frame(browser, portal, context)
            result["running"] = to_first_frame(browser, portal, context)
            on(config, where(config), f"tos-session pause {TENANT}")
            result["paused"] = to_first_frame(browser, portal, context)
            result["hibernated"] = [restore_round(config, browser, portal, context) for _ in range(ROUNDS)]
    finally:
        stopped(config)
    rounds = result["hibernated"]
    added = statistics.median(r["adds_s"] for r in rounds)
    result["front_door_adds_to_restore_s"] = {"median": added, "min": min(r["adds_s"] for r in rounds),
                                              "max": max(r["adds_s"] for r in rounds)}
    result["targets"] = {
        "actions_as_expected": [result[s]["action"] for s in ("stopped", "running", "paused")] == [
            "start", "attach", "resume"] and all(r["action"] == "restore" for r in rounds),
        "front_door_adds_under_1s": added < OVERHEAD_TARGET}
    return report("front-door", result)


if __name__ == "__main__":
    raise SystemExit(main())
