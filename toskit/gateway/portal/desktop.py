"""The signed-in person's desktop: the page, and the call that has the broker bring their tenant's
session up (attach, resume, restore or start, on the node placement picks).

    GET  /desktop        the page (its script asks for the session, then shows where it stands)
    POST /session/open   JSON, CSRF header: {"action": ..., "message": ...}, or 503 {"error": ...}

What a person sees names no node and no other tenant: the details go to the portal's log.
"""

import logging

from starlette.responses import JSONResponse, RedirectResponse

from .broker import Unavailable

log = logging.getLogger("tos-portal")

SAID = {"attach": "Your session is running.", "resume": "Your session was paused; it runs again.",
        "restore": "Your session is back as you left it.", "start": "Your session was started."}


async def desktop_page(portal, request):
    if not request.session.get("person"):
        return RedirectResponse("/", status_code=303)
    return portal.page("desktop.html", request)


async def open_session(portal, request):
    person = request.session.get("person")
    if not person:
        return JSONResponse({"error": "Sign in first."}, 401)
    refused = portal.json_refused(request)
    if refused:
        return refused
    tenant = portal.settings.tenant(person["tenant"])
    if portal.broker is None or tenant is None or not tenant.enabled:
        log.error("session of %s: no broker, or the tenant is gone or disabled", person["tenant"])
        return JSONResponse({"error": "Sessions are unavailable right now."}, 503)
    try:
        placed = await portal.broker.open(tenant)
    except Unavailable as e:
        log.warning("session of %s not brought up: %s", tenant.id, e)
        return JSONResponse({"error": "Your session cannot be brought up right now. Try again shortly."}, 503)
    return JSONResponse({"action": placed.decision.action, "message": SAID[placed.decision.action]})
