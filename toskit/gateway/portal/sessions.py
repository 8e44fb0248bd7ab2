"""Server-side sessions: the browser holds only a random id (a `__Host-` cookie: Secure, HttpOnly,
SameSite=Lax, path /); what a session holds stays in this process's memory. Signing out deletes
it here, so a copied cookie is worth nothing afterwards. A restart of the portal ends every
session (people sign in again; nothing is lost: passkeys and secrets live in Vault).

Lax, not Strict: a provider sends the browser back to the callback by a cross-site top-level
navigation, which must carry the cookie holding the pending sign-in's state.
"""

import secrets
import time
from collections import OrderedDict

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection

COOKIE = "__Host-tos-session"


class Session(dict):
    """A session's data; `rotate()` gives it a new id (at sign-in), `end()` deletes it."""

    def __init__(self, sid: str | None, data: dict, created: float):
        super().__init__(data)
        self.sid, self.created = sid, created
        self.rotated = self.ended = False

    def rotate(self) -> None:
        self.rotated = True

    def end(self) -> None:
        self.clear()
        self.ended = True


class SessionStore:
    """Sessions by id, least recently used first; bounded, so anonymous visitors cannot fill memory."""

    def __init__(self, idle: int, lifetime: int, limit: int = 20000, clock=time.monotonic):
        self.idle, self.lifetime, self.limit, self.clock = idle, lifetime, limit, clock
        self._sessions: OrderedDict = OrderedDict()  # sid -> (data, created, last_seen)

    def __len__(self) -> int:
        return len(self._sessions)

    def load(self, sid: str | None) -> Session:
        now = self.clock()
        found = self._sessions.get(sid) if sid else None
        if found is not None:
            data, created, seen = found
            if now - seen <= self.idle and now - created <= self.lifetime:
                return Session(sid, data, created)
            del self._sessions[sid]
        return Session(None, {}, now)

    def save(self, session: Session) -> str | None:
        """Stores the session; returns the id the browser must hold now (None: drop its cookie)."""
        if session.sid and (session.ended or session.rotated or not session):
            self._sessions.pop(session.sid, None)
        if session.ended or not session:
            return None
        if session.sid is None or session.rotated:
            session.sid = secrets.token_urlsafe(32)
        self._sessions[session.sid] = (dict(session), session.created, self.clock())
        self._sessions.move_to_end(session.sid)
        while len(self._sessions) > self.limit:
            self._sessions.popitem(last=False)
        return session.sid


class SessionMiddleware:
    """Puts the request's Session in scope["session"] (what starlette's request.session and
    authlib read) and answers with the cookie it needs."""

    def __init__(self, app, store: SessionStore):
        self.app, self.store = app, store

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        had = HTTPConnection(scope).cookies.get(COOKIE)
        session = self.store.load(had)
        scope["session"] = session

        async def send_with_cookie(message):
            if message["type"] == "http.response.start":
                sid = self.store.save(session)
                headers = MutableHeaders(scope=message)
                if sid and sid != had:
                    headers.append("Set-Cookie", f"{COOKIE}={sid}; Path=/; Secure; HttpOnly; SameSite=Lax")
                elif sid is None and had:
                    headers.append("Set-Cookie", f"{COOKIE}=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Lax")
            await send(message)

        await self.app(scope, receive, send_with_cookie)
