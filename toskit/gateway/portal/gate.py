"""The gateway's part of the command gate (the session judges; toskit/node/gate): who staged and who
approved, and the passkey for a destructive command, verified here, the "biometric relay".

    POST /gate/challenge   JSON {"id", "digest"} of a staged command, CSRF header: WebAuthn request
                           options for one of the person's passkeys, user verification required

Its challenge binds that stage: 8 bytes of time, the stage's digest itself (the sha256 of exactly
what was staged and read: the signed clientDataJSON names the command), and an HMAC (a key of this
portal process) over those, the person's sign-in and the stage's id.
On the channel, every message a tab sends loses whatever it says in "gateway" and gains what the
gateway vouches for: {"person", "approver", "credential", "user_verified"}; an approval carrying an
assertion is verified first (challenge of this sign-in and this stage, not older than a stage
lives, signed by one of the person's passkeys), and one that does not verify goes no further. A
replayed assertion finds its stage used: the session approves a stage once.
"""

import hashlib
import hmac
import json
import logging
import re
import secrets
import struct
import time

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from .passkeys import PasskeyRefused, unb64
from .vault import SecretUnavailable

log = logging.getLogger("tos-portal.gate")
KEY = secrets.token_bytes(32)  # this process's: a restart voids the challenges it gave
GATE_COMMANDS = ("stage", "approve", "cancel")


def challenge(sid: str, stage_id: str, digest: str, now: float | None = None, key: bytes = KEY) -> bytes:
    """72 bytes: time (8), the stage's digest (32), the HMAC (32). ValueError for a digest that is not hex."""
    stamp, named = struct.pack(">d", time.time() if now is None else now), bytes.fromhex(digest)
    return stamp + named + hmac.new(key, b"\0".join([b"tos-gate", stamp, named, sid.encode(), stage_id.encode()]),
                                    hashlib.sha256).digest()


def challenge_holds(given: str, sid: str, stage_id: str, digest: str, most_age: float, key: bytes = KEY) -> bool:
    """`given` (websafe base64) is this portal's challenge for this sign-in and stage, not older than `most_age`."""
    try:
        raw = unb64(given)
        (stamp,) = struct.unpack(">d", raw[:8])
        expected = challenge(sid, stage_id, digest, stamp, key)
    except (ValueError, struct.error, TypeError):
        return False
    return 0 <= time.time() - stamp <= most_age and hmac.compare_digest(raw, expected)


async def challenge_options(portal, request):
    person, refused = portal.json_caller(request)
    if refused:
        return refused
    try:
        body = await request.json()
    except ValueError:
        body = None
    stage_id, digest = (body.get("id"), body.get("digest")) if isinstance(body, dict) else (None, None)
    if not (isinstance(stage_id, str) and isinstance(digest, str) and 0 < len(stage_id) <= 64
            and re.fullmatch(r"[0-9a-f]{64}", digest)):
        return JSONResponse({"error": "Name the staged command: its id and digest."}, 400)
    bound = challenge(request.session.sid, stage_id, digest)
    try:
        options = await run_in_threadpool(portal.passkeys.approval_begin, person, bound)
    except PasskeyRefused as e:
        log.warning("gate challenge for %s refused: %s", person["subject"], e)
        return JSONResponse({"error": "Approving this command needs a passkey: register one first."}, 400)
    except SecretUnavailable as e:
        log.error("gate challenge: %s", e)
        return JSONResponse({"error": "Passkeys are unavailable right now."}, 503)
    return JSONResponse(options)


class Vetting:
    """What a tab sends on its channel, vetted for the session's gate (relay's `vet`)."""

    def __init__(self, portal, websocket, person: dict, tenant):
        self.portal, self.websocket, self.person, self.tenant = portal, websocket, person, tenant
        self.sid = websocket.session.sid
        self.expires = float((tenant.gate or {}).get("expires_seconds", 0))

    def opening(self) -> str | None:
        """The first message to the session: its tenant's policy (None: the gate is off)."""
        if not self.tenant.gate:
            return None
        return json.dumps({"cmd": "gate", "gateway": {"policy": self.tenant.gate}})

    async def __call__(self, message: str) -> str | None:
        try:
            request = json.loads(message)
        except ValueError:
            return message  # the session refuses what is not JSON, as it always did
        if not isinstance(request, dict):
            return message
        spoke_for_gateway = request.pop("gateway", None) is not None
        if spoke_for_gateway or request.get("cmd") == "gate":
            log.warning("session channel of %s: a tab spoke for the gateway (not passed on)", self.tenant.id)
            if request.get("cmd") == "gate":
                return None
        if request.get("cmd") not in GATE_COMMANDS:  # desktop input: as the tab sent it, less any claim
            return json.dumps(request) if spoke_for_gateway else message
        name = self.person.get("name") or self.person.get("subject")
        vouched = {"person": name, "approver": name, "credential": None, "user_verified": False}
        assertion, bound = request.pop("assertion", None), request.pop("challenge", None)
        if request["cmd"] == "approve" and assertion is not None:
            credential = await self._verified(request, assertion, bound)
            if credential is None:
                await self.websocket.send_text(json.dumps({
                    "type": "refused", "id": request.get("id"), "error": "The passkey did not verify for this command."}))
                return None
            vouched.update(credential=credential, user_verified=True)
        request["gateway"] = vouched
        return json.dumps(request)

    async def _verified(self, request: dict, assertion, bound) -> str | None:
        """The id of the person's passkey that signed this stage's challenge, or None (logged)."""
        stage_id, digest = request.get("id"), request.get("digest")
        if not (isinstance(stage_id, str) and isinstance(digest, str) and isinstance(bound, str)
                and isinstance(assertion, dict)):
            log.warning("gate approval of %s: no assertion for a stage", self.tenant.id)
            return None
        if not challenge_holds(bound, self.sid, stage_id, digest, self.expires):
            log.warning("gate approval of %s: the challenge is not this sign-in's for this stage", self.tenant.id)
            return None
        try:
            credential = await run_in_threadpool(self.portal.passkeys.approval_complete, self.person, bound, assertion)
        except (PasskeyRefused, SecretUnavailable) as e:
            log.warning("gate approval of %s: %s", self.tenant.id, e)
            return None
        log.info("gate approval of %s: stage %s by %s, passkey %s", self.tenant.id, stage_id, self.person["subject"],
                 credential[:16])
        return credential

