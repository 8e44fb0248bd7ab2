"""Server-side sessions: the browser holds only a random id (a `__Host-` cookie: Secure, HttpOnly,
SameSite=Lax, path /); what a session holds stays in this process's memory. Signing out deletes
it here, so a copied cookie is worth nothing afterwards, even to a request already under way. A
restart of the portal ends every session (people sign in again; nothing is lost: passkeys and
secrets live in Vault).

Lax, not Strict: a provider sends the browser back to the callback by a cross-site top-level
navigation, which must carry the cookie holding the pending sign-in's state.

Two pools: signed-in sessions, and pending ones (a sign-in under way, a Level-0 view). Pending
sessions live minutes and the pool is small, so a flood of anonymous visitors pushes out other
anonymous visitors, never a signed-in person.

A session channel (desktop.py) outlives the request that opened it: it waits on `until_ended`,
which returns the moment the session is signed out or pushed out, or when it reaches its idle time
or lifetime; the person's input on a channel counts as activity (`touch`).
"""

import asyncio
import contextlib
import secrets
import time
from collections import OrderedDict

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection

COOKIE = "__Host-tos-session"
PENDING_LIFETIME = 600  # seconds: enough to sign in at the provider
PENDING_LIMIT = 5000


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
    """Sessions by id in two bounded pools, least recently used first."""

    def __init__(self, idle: int, lifetime: int, limit: int = 20000, clock=time.monotonic):
        self.idle, self.lifetime, self.limit, self.clock = idle, lifetime, limit, clock
        self._signed_in: OrderedDict = OrderedDict()  # sid -> (data, created, last_seen)
        self._pending: OrderedDict = OrderedDict()
        self._watched: dict = {}  # sid -> asyncio.Event, set when that session ends

    def __len__(self) -> int:
        return len(self._signed_in) + len(self._pending)

    def _pool(self, data: dict) -> tuple:
        return (self._signed_in, self.limit, self.idle, self.lifetime) if data.get("person") else \
            (self._pending, PENDING_LIMIT, PENDING_LIFETIME, PENDING_LIFETIME)

    def _find(self, sid: str):
        return self._signed_in.get(sid) or self._pending.get(sid)

    def _unlink(self, sid: str) -> None:
        self._signed_in.pop(sid, None)
        self._pending.pop(sid, None)

    def _drop(self, sid: str) -> None:
        """The session ends: gone from its pool, and whatever waits on it told."""
        self._unlink(sid)
        event = self._watched.pop(sid, None)
        if event is not None:
            event.set()

    def load(self, sid: str | None) -> Session:
        now = self.clock()
        found = self._find(sid) if sid else None
        if found is not None:
            data, created, seen = found
            _, _, idle, lifetime = self._pool(data)
            if now - seen <= idle and now - created <= lifetime:
                return Session(sid, data, created)
            self._drop(sid)
        return Session(None, {}, now)

    def save(self, session: Session) -> str | None:
        """Stores the session; returns the id the browser must hold now (None: drop its cookie).
        A session deleted while this request ran (a sign-out) is not brought back."""
        if session.sid and (session.ended or session.rotated or not session):
            self._drop(session.sid)
        if session.ended or not session:
            return None
        if session.sid is not None and not session.rotated and self._find(session.sid) is None:
            return None  # ended by another request meanwhile
        if session.sid is None or session.rotated:
            session.sid = secrets.token_urlsafe(32)
            session.created = self.clock()
        self._unlink(session.sid)  # put back, last in its pool's order of use
        pool, limit, _, _ = self._pool(session)
        pool[session.sid] = (dict(session), session.created, self.clock())
        while len(pool) > limit:
            self._drop(next(iter(pool)))
        return session.sid

    def touch(self, sid: str) -> None:
        """A signed-in session was used without a request (input on its channel)."""
        found = self._signed_in.get(sid)
        if found is not None:
            data, created, _ = found
            self._signed_in[sid] = (data, created, self.clock())
            self._signed_in.move_to_end(sid)

    async def until_ended(self, sid: str) -> None:
        """Returns when signed-in session `sid` ends: signed out, pushed out, idle or past its lifetime."""
        while (found := self._signed_in.get(sid)) is not None:
            _, created, seen = found
            left = min(seen + self.idle, created + self.lifetime) - self.clock()
            if left <= 0:
                self._drop(sid)
                return
            event = self._watched.setdefault(sid, asyncio.Event())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), left)


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
