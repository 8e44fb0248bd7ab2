"""The portal's web application (starlette, served by uvicorn on loopback behind nginx).

    GET  /                        Level-0: the sign-in providers (or, signed in, where to go next)
    GET  /auth/login/<provider>   off to the provider (state, nonce, PKCE kept in the session)
    GET  /auth/callback/<provider>  back from it: the person, their tenant, or "access denied"
    GET  /approved                "Authorization Approved": who is signed in, for which tenant
    POST /signout                 ends the session here (CSRF token required)
    GET  /rate-limited            what nginx shows when sign-in attempts come too fast
    GET  /passkeys                a signed-in person's passkeys: add (JSON ceremony), remove (POST)
    POST /passkeys/register/begin|complete   WebAuthn registration (JSON, CSRF header)
    POST /passkeys/remove         one of them (CSRF token)
    POST /auth/passkey/begin|complete        sign-in with a passkey alone (JSON, CSRF header)
    GET  /desktop, POST /session/open        the person's session, brought up by the broker (desktop.py)
    WS   /session/channel                    its channel: frames out, input in (desktop.py)

Starting a sign-in is a GET: it changes nothing but the pending state in the visitor's own
session, and the callback only completes the sign-in that session started (state check).
"""

import functools
import hmac
import logging
import secrets
from importlib import resources
from urllib.parse import urlsplit

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route, WebSocketRoute

from . import desktop, gate
from .broker import Broker
from .passkeys import PasskeyRefused, Passkeys
from .providers import Providers, SignInRefused, printable
from .sessions import SessionMiddleware, SessionStore
from .settings import Settings
from .vault import PortalVault, SecretUnavailable

log = logging.getLogger("tos-portal")

# No inline script or style anywhere; nothing from another origin.
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".svg": "image/svg+xml"}


def _static_files() -> dict:
    folder = resources.files(__package__) / "static"
    return {f.name: f.read_bytes() for f in folder.iterdir() if f.name[f.name.rfind("."):] in STATIC_TYPES}


class Portal:
    def __init__(self, settings: Settings, vault: PortalVault | None = None):
        self.settings = settings
        vault = vault or PortalVault(settings.vault)
        self.providers = Providers(settings, vault)
        self.passkeys = Passkeys(urlsplit(settings.public_url).hostname, settings.public_url.rstrip("/"), vault,
                                 settings.title)
        self.pages = jinja2.Environment(loader=jinja2.PackageLoader(__package__, "templates"),
                                        autoescape=True, undefined=jinja2.StrictUndefined)
        self.static = _static_files()
        self.origin = settings.public_url.rstrip("/")
        self.broker = Broker(settings.broker) if settings.broker else None

    def page(self, template: str, request, status: int = 200, **values) -> HTMLResponse:
        session = request.scope.get("session") or {}  # none in the outermost (500) handler
        body = self.pages.get_template(template).render(
            title=self.settings.title, person=session.get("person"), csrf=session.get("csrf", ""), **values)
        return HTMLResponse(body, status_code=status, headers={"Content-Security-Policy": CSP,
                                                               "Cache-Control": "no-store"})

    def error(self, request, status: int, heading: str, message: str) -> HTMLResponse:
        return self.page("error.html", request, status=status, code=status, heading=heading, message=message)

    async def level0(self, request):
        request.session.setdefault("csrf", secrets.token_urlsafe(32))  # for the passkey sign-in
        return self.page("level0.html", request, providers=self.settings.providers)

    def _provider(self, request):
        provider = self.settings.provider(request.path_params["provider"])
        if provider is None:
            raise HTTPException(404)
        return provider

    async def login(self, request):
        provider = self._provider(request)
        try:
            return await self.providers.start(request, provider)
        except SecretUnavailable as e:
            log.error("sign-in with %s refused: %s", provider.name, e)
            return self.error(request, 503, "Subspace relay offline",
                              f"Sign-in with {provider.title} is unavailable right now. Try again shortly.")
        except SignInRefused as e:
            log.warning("sign-in with %s refused: %s", provider.name, e)
            return self.error(request, 502, "Subspace relay offline",
                              f"{provider.title} could not be reached. Try again shortly.")

    async def callback(self, request):
        provider = self._provider(request)
        try:
            person = await self.providers.finish(request, provider)
        except SecretUnavailable as e:
            log.error("sign-in with %s refused: %s", provider.name, e)
            return self.error(request, 503, "Subspace relay offline",
                              f"Sign-in with {provider.title} is unavailable right now. Try again shortly.")
        except SignInRefused as e:
            log.warning("sign-in refused: %s", e)
            return self.error(request, 400, "Sign-in not verified",
                              "The answer from your sign-in provider could not be verified. Start again.")
        tenant = self._tenant(person.provider, person.subject, person.claim_values)
        if tenant is None:
            request.session.end()
            return self.page("denied.html", request, status=403)
        self._signed_in(request, {"provider": person.provider, "subject": person.subject, "name": person.name,
                                  "claims": list(person.claim_values)}, tenant.id, "provider")
        return RedirectResponse("/approved", status_code=303)

    def _tenant(self, provider: str, subject: str, claim_values):
        """The person's one enabled tenant, else None (logged): in none, in a disabled one, or in two."""
        tenants = self.settings.tenants_of(provider, claim_values)
        if len(tenants) == 1 and tenants[0].enabled:
            return tenants[0]
        why = "no tenant" if not tenants else "a disabled tenant" if len(tenants) == 1 else \
            f"{len(tenants)} tenants ({', '.join(t.id for t in tenants)})"
        log.warning("access denied: %s subject %s is in %s", provider, printable(subject), why)
        return None

    @staticmethod
    def _signed_in(request, person: dict, tenant: str, via: str) -> None:
        request.session.clear()
        request.session.rotate()  # a new id at sign-in: a cookie planted before it is worth nothing
        request.session.update(person={**person, "tenant": tenant, "via": via}, csrf=secrets.token_urlsafe(32))
        log.info("signed in (%s): %s subject %s, tenant %s", via, person["provider"], printable(person["subject"]), tenant)

    async def approved(self, request):
        if not request.session.get("person"):
            return RedirectResponse("/", status_code=303)
        return self.page("approved.html", request)

    async def signout(self, request):
        form = await request.form()
        if not self._same_origin(request) or not self._csrf_ok(request, form.get("csrf")):
            log.warning("sign-out refused: cross-site or without a valid CSRF token")
            return self.error(request, 403, "Request refused", "This request did not come from this page.")
        person = request.session.get("person")
        request.session.end()
        if person:
            log.info("signed out: %s subject %s", person["provider"], person["subject"])
        return RedirectResponse("/", status_code=303)

    def _same_origin(self, request) -> bool:
        origin = request.headers.get("origin")
        return origin is None or origin == self.origin  # browsers send Origin on every POST

    @staticmethod
    def _csrf_ok(request, token) -> bool:
        expected = request.session.get("csrf")
        return bool(expected and isinstance(token, str) and hmac.compare_digest(expected, token))

    async def denied(self, request):
        return self.page("denied.html", request, status=403)

    def json_caller(self, request) -> tuple:
        """(the signed-in person, None) for a JSON call of this origin's page, or (None, the refusal)."""
        person = request.session.get("person")
        if not person:
            return None, JSONResponse({"error": "Sign in first."}, 401)
        refused = self.json_refused(request)
        return (None, refused) if refused else (person, None)

    def json_refused(self, request) -> JSONResponse | None:
        """A JSON call must come from this origin's page, with its CSRF token in a header."""
        if not self._same_origin(request) or not self._csrf_ok(request, request.headers.get("x-csrf-token")):
            log.warning("JSON request to %s refused: cross-site or without a valid CSRF token", request.url.path)
            return JSONResponse({"error": "This request did not come from this page."}, status_code=403)
        return None

    # ---- passkeys
    async def _json_body(self, request) -> dict:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise PasskeyRefused("the request is not a JSON object")
        return body

    async def passkeys_page(self, request):
        person = request.session.get("person")
        if not person:
            return RedirectResponse("/", status_code=303)
        try:
            listed = await run_in_threadpool(self.passkeys.listed, person)
        except SecretUnavailable as e:
            log.error("passkeys of %s: %s", person["subject"], e)
            return self.error(request, 503, "Subspace relay offline", "Passkeys are unavailable right now.")
        return self.page("passkeys.html", request, passkeys=listed)

    async def passkey_register_begin(self, request):
        return await self._registration(request, self._register_begin)

    async def _register_begin(self, request):
        options, state = await run_in_threadpool(self.passkeys.register_begin, request.session["person"])
        request.session["passkey_registration"] = state
        return options

    async def passkey_register_complete(self, request):
        return await self._registration(request, self._register_complete)

    async def _registration(self, request, step):
        if not request.session.get("person"):
            return JSONResponse({"error": "Sign in first."}, 401)
        return self.json_refused(request) or await self._ceremony(request, "registration", step)

    async def _register_complete(self, request):
        state = request.session.pop("passkey_registration", None)
        body = await self._json_body(request)
        if state is None:
            raise PasskeyRefused("no registration was started in this session")
        name = body.get("name") if isinstance(body.get("name"), str) else ""
        credential_id = await run_in_threadpool(self.passkeys.register_complete, request.session["person"], state,
                                                body.get("credential"), name)
        log.info("passkey registered: %s subject %s, credential %s", request.session["person"]["provider"],
                 request.session["person"]["subject"], credential_id[:16])
        return {"registered": True}

    async def passkey_remove(self, request):
        person = request.session.get("person")
        form = await request.form()
        if not person or not self._same_origin(request) or not self._csrf_ok(request, form.get("csrf")):
            return self.error(request, 403, "Request refused", "This request did not come from this page.")
        credential = form.get("credential")
        try:
            removed = await run_in_threadpool(self.passkeys.remove, person, str(credential or ""))
        except SecretUnavailable as e:
            log.error("passkey removal: %s", e)
            return self.error(request, 503, "Subspace relay offline", "Passkeys are unavailable right now.")
        if removed:
            log.info("passkey removed: %s subject %s", person["provider"], person["subject"])
        return RedirectResponse("/passkeys", status_code=303)

    async def passkey_sign_in_begin(self, request):
        return self.json_refused(request) or await self._ceremony(request, "sign-in", self._sign_in_begin)

    async def _sign_in_begin(self, request):
        options, state = self.passkeys.sign_in_begin()
        request.session["passkey_sign_in"] = state
        return options

    async def passkey_sign_in_complete(self, request):
        return self.json_refused(request) or await self._ceremony(request, "sign-in", self._sign_in_complete)

    async def _sign_in_complete(self, request):
        state = request.session.pop("passkey_sign_in", None)  # one use, pass or fail
        body = await self._json_body(request)
        if state is None:
            raise PasskeyRefused("no passkey sign-in was started in this session")
        record = await run_in_threadpool(self.passkeys.sign_in_complete, state, body)
        person = record["person"]
        tenant = self._tenant(person["provider"], person["subject"], record.get("claims", []))
        if tenant is None:
            request.session.end()
            return {"next": "/denied"}
        self._signed_in(request, {**person, "claims": record.get("claims", [])}, tenant.id, "passkey")
        return {"next": "/approved"}

    async def _ceremony(self, request, what: str, step) -> JSONResponse:
        try:
            return JSONResponse(await step(request))
        except PasskeyRefused as e:
            log.warning("passkey %s refused: %s", what, e)
            return JSONResponse({"error": f"The passkey {what} was refused."}, status_code=400)
        except SecretUnavailable as e:
            log.error("passkey %s: %s", what, e)
            return JSONResponse({"error": "Passkeys are unavailable right now."}, status_code=503)

    async def rate_limited(self, request):
        return self.error(request, 429, "Too many attempts", "Sign-in attempts came too fast. Wait a minute.")

    async def static_file(self, request):
        name = request.path_params["name"]
        if name not in self.static:
            raise HTTPException(404)
        return Response(self.static[name], media_type=STATIC_TYPES[name[name.rfind("."):]],
                        headers={"Cache-Control": "public, max-age=3600"})

    async def http_error(self, request, exc: HTTPException):
        if exc.status_code == 404:
            return self.error(request, 404, "Sector not found", "There is nothing at this address.")
        return self.error(request, exc.status_code, "Request refused", "This request cannot be served.")

    async def server_error(self, request, exc: Exception):
        log.exception("unexpected error", exc_info=exc)
        return self.error(request, 500, "Malfunction", "Something failed on our side. Try again.")

    def application(self) -> Starlette:
        routes = [Route("/", self.level0), Route("/auth/login/{provider}", self.login),
                  Route("/auth/callback/{provider}", self.callback), Route("/approved", self.approved),
                  Route("/signout", self.signout, methods=["POST"]), Route("/rate-limited", self.rate_limited),
                  Route("/denied", self.denied), Route("/passkeys", self.passkeys_page),
                  Route("/passkeys/register/begin", self.passkey_register_begin, methods=["POST"]),
                  Route("/passkeys/register/complete", self.passkey_register_complete, methods=["POST"]),
                  Route("/passkeys/remove", self.passkey_remove, methods=["POST"]),
                  Route("/auth/passkey/begin", self.passkey_sign_in_begin, methods=["POST"]),
                  Route("/auth/passkey/complete", self.passkey_sign_in_complete, methods=["POST"]),
                  Route("/desktop", functools.partial(desktop.desktop_page, self)),
                  Route("/session/open", functools.partial(desktop.open_session, self), methods=["POST"]),
                  WebSocketRoute("/session/channel", functools.partial(desktop.session_channel, self)),
                  Route("/gate/challenge", functools.partial(gate.challenge_options, self), methods=["POST"]),
                  Route("/static/{name}", self.static_file)]
        app = Starlette(routes=routes, exception_handlers={HTTPException: self.http_error, 500: self.server_error})
        self.sessions = SessionStore(self.settings.session_idle, self.settings.session_max)
        app.add_middleware(SessionMiddleware, store=self.sessions)
        return app
