"""make bench-channels: the lab's gateway under load, from this machine: CHANNELS session channels
(WebSockets) held at once through one gateway, each for HOLD seconds once all are open, the whole
run bounded by LIMIT.

It signs in once as the lab's dave (tenant delta; bench/front_door.py), has the broker bring the
session up, then opens every channel with that cookie (CHANNELS tabs of one person): gateway nginx,
portal relay, mutual TLS 1.3 to the node, node API relay, the session's agent. At most OPENING
channels are in their opening handshakes at a time (as tabs come, not all in one instant: 200 TLS
handshakes at once overwhelm an emulated gateway's one vCPU, see the README); the others wait their
turn, and every channel is held until all are open. Each times its opening (handshake done), its
first frame, and one input's round trip once all are open (sent, until a frame acknowledges it),
and counts its frames. Targets: every channel opened and held at once, no error, frames flowing (at
least one each two seconds held), all within LIMIT. Needs a deployed lab with a gateway.
"""

import asyncio
import json
import os
import ssl
import statistics
import time
from urllib.parse import urlsplit

from websockets.asyncio.client import connect

from bench import report
from bench.front_door import portal_url, signed_in, tls
from toskit.gateway.portal.sessions import COOKIE
from toskit.lab.config import GATEWAY_SERVER_NAME, LabConfig
from toskit.lab.vault import LabVault

CHANNELS = int(os.environ.get("BENCH_CHANNELS", "200"))
HOLD = float(os.environ.get("BENCH_HOLD", "10"))  # seconds each channel stays open once all are
OPENING = int(os.environ.get("BENCH_OPENING", "16"))  # channels in their opening handshake at a time
LIMIT = float(os.environ.get("BENCH_LIMIT", "300"))  # seconds for the whole load


class Crowd:
    """The channels of one run: how many are opening at once, and when all are open (or failed)."""

    def __init__(self):
        self.opening = asyncio.Semaphore(OPENING)
        self.ended_opening, self.held, self.most_held = 0, 0, 0
        self.all_open = asyncio.Event()

    def opened(self, ok: bool) -> None:
        self.ended_opening += 1
        if ok:
            self.held += 1
            self.most_held = max(self.most_held, self.held)
        if self.ended_opening == CHANNELS:
            self.all_open.set()


async def one_channel(number: int, portal: str, cookie: str, context: ssl.SSLContext, crowd: Crowd) -> dict:
    async with crowd.opening:
        began = time.monotonic()
        try:
            channel = await connect(f"wss://127.0.0.1:{urlsplit(portal).port}/session/channel", ssl=context,
                                    server_hostname=GATEWAY_SERVER_NAME, proxy=None, compression=None,
                                    open_timeout=LIMIT, additional_headers={"Origin": portal,
                                                                            "Cookie": f"{COOKIE}={cookie}"})
            opened = time.monotonic()
            json.loads(await channel.recv())
            first = time.monotonic()
        except BaseException:
            crowd.opened(False)
            raise
    crowd.opened(True)
    try:
        async with channel:
            async def drained():  # frames while the others open: read, not counted
                while True:
                    await asyncio.wait_for(channel.recv(), 5)
            draining = asyncio.create_task(drained())
            await crowd.all_open.wait()
            draining.cancel()
            await asyncio.gather(draining, return_exceptions=True)
            await channel.send(json.dumps({"cmd": "pop", "tab": f"bench-{number}", "seq": 1}))
            sent, frames, acked = time.monotonic(), 0, None
            while time.monotonic() < sent + HOLD:
                frame = json.loads(await asyncio.wait_for(channel.recv(), 5))
                frames += 1
                if acked is None and frame.get("acked") == 1:
                    acked = time.monotonic()
    finally:
        crowd.held -= 1
    return {"open": opened - began, "first_frame": first - began, "input_rtt": (acked or float("inf")) - sent,
            "frames_held": frames}


def percentiles(values: list) -> dict:
    cut = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": round(cut[49], 3), "p95": round(cut[94], 3), "p99": round(cut[98], 3), "max": round(max(values), 3)}


async def load(portal: str, cookie: str, context: ssl.SSLContext) -> tuple:
    crowd = Crowd()
    runs = [one_channel(n, portal, cookie, context, crowd) for n in range(CHANNELS)]
    return await asyncio.wait_for(asyncio.gather(*runs, return_exceptions=True), LIMIT), crowd.most_held


def main() -> int:
    config = LabConfig.from_env()
    vault = LabVault(config)
    portal = portal_url(config)
    context = tls(vault)
    with signed_in(vault, portal, context) as browser:
        action, cookie = browser.open_session(), browser.client.cookies[COOKIE]
    began = time.monotonic()
    results, most_held = asyncio.run(load(portal, cookie, context))
    elapsed = time.monotonic() - began
    done = [r for r in results if isinstance(r, dict)]
    errors = [f"{type(r).__name__}: {r}" for r in results if not isinstance(r, dict)]
    result = {
        "channels": CHANNELS, "opening_at_once": OPENING, "hold_s": HOLD,
        "session": action, "elapsed_s": round(elapsed, 1), "opened": len(done), "held_at_once": most_held,
        "errors": len(errors),
        "error_kinds": sorted(set(errors))[:5],
        **({"open_s": percentiles([r["open"] for r in done]),
            "first_frame_s": percentiles([r["first_frame"] for r in done]),
            "input_rtt_s": percentiles([r["input_rtt"] for r in done]),
            "frames_held_min": min(r["frames_held"] for r in done)} if len(done) > 1 else {}),
    }
    result["targets"] = {"all_held_at_once": most_held == CHANNELS, "no_errors": not errors,
                         "frames_flowing": bool(done) and min(r["frames_held"] for r in done) >= HOLD / 2,
                         "inputs_acknowledged": bool(done) and all(r["input_rtt"] < HOLD for r in done)}
    return report("channels", result)


if __name__ == "__main__":
    raise SystemExit(main())
