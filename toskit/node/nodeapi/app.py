"""The node API: the gateway's broker asks a node through it, and through nothing else.

nginx in front (roles/node_api.py) has already required TLS 1.3 and a client certificate of the
cluster CA naming a gateway; this app listens on a unix socket only nginx can open. Each verb runs
tos-session with a fixed argv (no shell; the tenant id must look like one before it is passed, and
tos-session checks it against the node's tenants): no request can make it run anything else.

    GET  /v1/report[/TENANT]              tos-session report [TENANT]
    POST /v1/sessions/TENANT/VERB         tos-session VERB TENANT, VERB: start, restore, resume, pause;
                                          answered when done: {"done": its last line}
    WS   /v1/sessions/TENANT/channel      the running session's channel: its agent's WebSocket, relayed
                                          (where it is: tos-session address TENANT)

Reports and addresses are answered by one resident `tos-session reader` (reader.py); each change
is a tos-session process of its own. A change asked again while the same one runs shares it;
tos-session's per-tenant lock orders different ones.
"""

import asyncio
import contextlib
import json
import logging
import os
import re
import time

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake

from . import CHANGE_TIMEOUT
from .reader import Reader
from .relay import relay

TOOL = "/usr/local/sbin/tos-session"
TENANT_ID = re.compile(r"[a-z][a-z0-9]{1,23}")  # toskit/tenants.py TENANT_ID (a unit test keeps them equal)
TIMEOUT = 30  # seconds; the report reads each tenant's volume state on the share
# Close codes (RFC 6455 leaves 4000-4999 to applications): no such session here, session not running.
NO_SUCH_TENANT, NOT_RUNNING = 4404, 4409
READS = ("report", "address")  # answered by the reader (tosnode/cli.py READS: a unit test keeps them equal)
_running: dict = {}  # argv -> the task running it: concurrent identical asks share one run
_reader: Reader | None = None
log = logging.getLogger("tos-node-api")


def _as_root_alone() -> dict:
    """The service runs with nginx's group and a group-open umask (its socket's); tos-session must not
    inherit them: what it writes (leases, keys) stays root's alone."""
    return {"group": 0, "extra_groups": [], "umask": 0o022} if os.geteuid() == 0 else {"umask": 0o022}


def reader() -> Reader:
    global _reader
    if _reader is None or _reader.tool != TOOL:
        _reader = Reader(TOOL, _as_root_alone())
    return _reader


async def _run(args: tuple, timeout: float) -> tuple[int, str, str]:
    if args[0] in READS:
        return await reader().ask(args, timeout)
    proc = await asyncio.create_subprocess_exec(TOOL, *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, **_as_root_alone())
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        try:  # a process stuck in the kernel (an NFS stall) may outlive SIGKILL: not waited on for ever
            await asyncio.wait_for(proc.wait(), 5)
        except asyncio.TimeoutError:
            pass
        return 75, "", f"tos-session {args[0]} did not finish in {timeout} s"
    return proc.returncode, out.decode(), err.decode().strip()


async def tos_session(*args: str, timeout: float | None = None) -> tuple[int, str, str]:
    """tos-session with this argv (within `timeout`, else TIMEOUT); the same argv asked again while it
    runs shares that run."""
    task = _running.get(args)
    if task is None:
        task = _running[args] = asyncio.ensure_future(_run(args, timeout or TIMEOUT))
        task.add_done_callback(lambda _: _running.pop(args, None))
    return await asyncio.shield(task)


def refused(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def report(request):
    tenant = request.path_params.get("tenant")
    if tenant is not None and not TENANT_ID.fullmatch(tenant):
        return refused(404, "no such tenant")
    code, out, err = await tos_session("report", *([tenant] if tenant else []))
    if code == 0:
        return JSONResponse(json.loads(out))
    if "unknown tenant" in err:
        return refused(404, "no such tenant")
    return refused(503, err or f"tos-session report ended with {code}")


async def change(request):
    tenant, verb = request.path_params["tenant"], request.path_params["verb"]
    if verb not in CHANGE_TIMEOUT:
        return refused(404, "no such verb")
    if not TENANT_ID.fullmatch(tenant):
        return refused(404, "no such tenant")
    began = time.monotonic()
    code, out, err = await tos_session(verb, tenant, timeout=CHANGE_TIMEOUT[verb])
    # The journal's account of each change (what the front-door benchmark subtracts: bench/front_door_bench.py).
    log.info("%s %s: exit %d in %.3f s", verb, tenant, code, time.monotonic() - began)
    if code == 0:
        lines = out.strip().splitlines()
        return JSONResponse({"done": lines[-1] if lines else ""})
    if "unknown tenant" in err:
        return refused(404, "no such tenant")
    # 75: busy (another command holds the tenant) or a fault worth retrying; else refused outright.
    return refused(503 if code == 75 else 409, err.splitlines()[-1] if err else f"tos-session {verb} ended with {code}")


async def channel(websocket: WebSocket):
    tenant = websocket.path_params["tenant"]
    if not TENANT_ID.fullmatch(tenant):
        return await websocket.close(NO_SUCH_TENANT)
    code, out, err = await tos_session("address", tenant)
    if code != 0:
        return await websocket.close(NO_SUCH_TENANT if "unknown tenant" in err else NOT_RUNNING)
    try:  # no proxy (the agent is on this node), no compression (small frames; no CRIME-like leaks)
        agent = await connect(f"ws://{out.strip()}/", proxy=None, compression=None, open_timeout=10)
    except (OSError, TimeoutError, InvalidHandshake):
        return await websocket.close(NOT_RUNNING)
    await relay(websocket, agent, seen=lambda message: gate_journal(tenant, message))


GATE_EVENTS = ("staged", "approved", "refused", "exited", "cancelled")
_journalled: dict = {}  # (tenant, stage id, event) -> None, newest last: each event once, however many tabs see it


def gate_journal(tenant: str, message: str) -> None:
    """The command gate's events in the node's journal, without the commands' arguments (those stay
    in the tenant's own audit log, on its volume): who, which stage, the verdict and the names of the
    commands, the approver and the passkey, the exit status."""
    if message.startswith('{"type": "frame"') or '"type": "output"' in message[:40]:
        return
    try:
        event = json.loads(message)
        kind, stage = event["type"], event.get("id")
    except (ValueError, KeyError, TypeError, AttributeError):
        return
    if kind not in GATE_EVENTS or (tenant, stage, kind) in _journalled:
        return
    _journalled[(tenant, stage, kind)] = None
    while len(_journalled) > 1024:
        _journalled.pop(next(iter(_journalled)))
    said = {"staged": lambda: f"staged by {event.get('by')}: {event.get('verdict')} "
                              f"({', '.join(map(str, event.get('commands') or [])) or 'unreadable'})",
            "approved": lambda: f"approved by {event.get('approver')}"
                                + (f" with passkey {str(event['credential'])[:16]}" if event.get("credential") else ""),
            # The refusal's first clause only: what follows may quote the command's reasons.
            "refused": lambda: f"refused: {str(event.get('error')).split(':')[0][:80]}",
            "exited": lambda: f"exited {event.get('exit')}",
            "cancelled": lambda: "cancelled"}[kind]()
    log.info("gate %s: stage %s %s", tenant, stage, said)


@contextlib.asynccontextmanager
async def lifespan(app):
    yield
    await reader().close()


def application() -> Starlette:
    return Starlette(lifespan=lifespan, routes=[Route("/v1/report", report, methods=["GET"]),
                             Route("/v1/report/{tenant}", report, methods=["GET"]),
                             WebSocketRoute("/v1/sessions/{tenant}/channel", channel),
                             Route("/v1/sessions/{tenant}/{verb}", change, methods=["POST"])])
