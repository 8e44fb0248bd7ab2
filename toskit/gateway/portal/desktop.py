"""The signed-in person's desktop: the page, and the call that has the broker bring their tenant's
session up (attach, resume, restore or start, on the node placement picks).

    GET  /desktop        the page (its script asks for the session, then shows where it stands)
    POST /session/open   JSON, CSRF header: {"action": ..., "message": ...}, or 503 {"error": ...}
    WS   /session/channel  the session's channel (its agent's frames out, input in), relayed to the
                         node's; the tenant is the signed-in person's, never one the request names;
                         command gate messages vetted on the way (gate.py)

What a person sees names no node and no other tenant: the details go to the portal's log.
"""

import logging

from starlette.responses import JSONResponse, RedirectResponse
from starlette.websockets import WebSocket
from websockets.exceptions import InvalidHandshake

from . import nodes
from .broker import Unavailable
from .gate import Vetting
from .relay import relay

log = logging.getLogger("tos-portal")
# Close codes (RFC 6455 7.4.1): refused by policy (not signed in, another site's page); try again later;
# the sign-in that opened the channel ended (ours, from the range for applications: the page stops).
POLICY, TRY_AGAIN, SIGNED_OUT = 1008, 1013, 4401

SAID = {"attach": "Your session is running.", "resume": "Your session was paused; it runs again.",
        "restore": "Your session is back as you left it.", "start": "Your session was started."}


async def desktop_page(portal, request):
    if not request.session.get("person"):
        return RedirectResponse("/", status_code=303)
    return portal.page("desktop.html", request)


async def open_session(portal, request):
    person, refused = portal.json_caller(request)
    if refused:
        return refused
    placed = await _placed(portal, person)
    if placed is None:
        return JSONResponse({"error": "Your session cannot be brought up right now. Try again shortly."}, 503)
    return JSONResponse({"action": placed.decision.action, "message": SAID[placed.decision.action]})


async def _placed(portal, person: dict):
    """The broker's Placed for the person's tenant, or None (logged) when it cannot be brought up."""
    tenant = portal.settings.tenant(person["tenant"])
    if portal.broker is None or tenant is None or not tenant.enabled:
        log.error("session of %s: no broker, or the tenant is gone or disabled", person["tenant"])
        return None
    try:
        return await portal.broker.open(tenant)
    except Unavailable as e:
        log.warning("session of %s not brought up: %s", tenant.id, e)
        return None


async def session_channel(portal, websocket: WebSocket):
    """Browsers send Origin with every WebSocket: only this portal's own page may open one (a page of
    another site would otherwise ride the person's cookie)."""
    person = websocket.session.get("person")
    if not person or websocket.headers.get("origin") != portal.origin:
        log.warning("session channel refused: %s", "not signed in" if not person else "another site's page")
        return await websocket.close(POLICY)
    opened = await _far_end(portal, person)
    if opened is None:
        return await websocket.close(TRY_AGAIN)
    door, far = opened
    tenant, sid = person["tenant"], websocket.session.sid
    log.info("session channel of %s opened to %s", tenant, door.name)

    async def signed_out() -> int:  # in any tab, or timed out: the cookie that opened it is worth nothing now
        await portal.sessions.until_ended(sid)
        log.info("session channel of %s closed: the person's sign-in ended", tenant)
        return SIGNED_OUT

    vetting = Vetting(portal, websocket, person, portal.settings.tenant(tenant))
    opening = vetting.opening()
    if opening is not None:
        await far.send(opening)  # the tenant's command gate policy, before anything of the tab's
    portal.sessions.touch(sid)
    await relay(websocket, far, heard=lambda: portal.sessions.touch(sid), stop=signed_out, vet=vetting)
    log.info("session channel of %s to %s closed", tenant, door.name)


async def _far_end(portal, person: dict):
    """(node door, the session's channel there), or None (logged). The node the broker last brought
    the session up on is tried first: a page's channel then costs no round of reports. If that node
    no longer runs it (paused by the idle policy, hibernated, moved), the broker brings it up again."""
    tenant = person["tenant"]
    door = portal.broker.last_door(tenant) if portal.broker else None
    if door is not None:
        far = await _channel(portal, door, tenant)
        if far is not None:
            return door, far
    placed = await _placed(portal, person)
    if placed is None:
        return None
    far = await _channel(portal, placed.door, tenant)
    return (placed.door, far) if far is not None else None


async def _channel(portal, door, tenant: str):
    try:
        return await nodes.channel(portal.broker.context(), door, tenant, portal.broker.access.report_timeout)
    except (OSError, TimeoutError, InvalidHandshake) as e:
        log.warning("session channel of %s: node %s refused it: %s: %s", tenant, door.name, type(e).__name__, e)
        return None
