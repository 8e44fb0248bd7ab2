"""Passkeys (WebAuthn, through python-fido2): registered after an OIDC sign-in, several per person,
then a sign-in with the passkey alone (a discoverable credential, user verification required).

Nothing is kept on the gateway: per person, Vault's KV holds a record at passkeys/<user handle>
(the person as their provider named them, the claim values their tenant was found by, and their
credentials: id, public key, sign count, name), and people/<digest of provider and subject> points
to it. Writes are check-and-set: two gateways cannot undo each other's change. A passkey sign-in
finds the person's tenant again from today's data: someone removed from a tenant is denied.
"""

import base64
import datetime
import hashlib
import secrets

import fido2.features
from fido2.server import Fido2Server
from fido2.webauthn import (AttestedCredentialData, AuthenticationResponse, PublicKeyCredentialRpEntity, PublicKeyCredentialUserEntity,
                            ResidentKeyRequirement, UserVerificationRequirement)

from .vault import PortalVault

try:  # fido2 1.x: options and responses as WebAuthn's JSON (base64url), what the browser's toJSON() speaks
    fido2.features.webauthn_json_mapping.enabled = True
except ValueError:
    pass

MOST_PASSKEYS = 10  # per person
NAME_LENGTH = 40


class PasskeyRefused(Exception):
    """The ceremony did not verify; the message is for the log."""


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def person_key(person: dict) -> str:
    return hashlib.sha256(f"{person['provider']}\0{person['subject']}".encode()).hexdigest()


class Passkeys:
    def __init__(self, rp_id: str, origin: str, vault: PortalVault, title: str = "TOS"):
        # The origin exactly (fido2's default accepts any port and subdomain of the RP id).
        self.server = Fido2Server(PublicKeyCredentialRpEntity(id=rp_id, name=title),
                                  verify_origin=lambda seen: seen == origin)
        self.vault = vault

    # ---- records in Vault
    def _handle(self, person: dict, create: bool) -> bytes | None:
        key = f"people/{person_key(person)}"
        found, version = self.vault.record(key)
        if found:
            return unb64(found["handle"])
        if not create:
            return None
        handle = secrets.token_bytes(32)
        self.vault.save_record(key, {"handle": b64(handle)}, version)
        return handle

    def _record(self, handle: bytes) -> tuple:
        found, version = self.vault.record(f"passkeys/{b64(handle)}")
        return found, version

    def listed(self, person: dict) -> list:
        handle = self._handle(person, create=False)
        record = self._record(handle)[0] if handle else None
        return [{"id": c["id"], "name": c["name"], "created": c["created"]} for c in (record or {}).get("credentials", [])]

    def remove(self, person: dict, credential_id: str) -> bool:
        handle = self._handle(person, create=False)
        record, version = self._record(handle) if handle else (None, 0)
        if not record or not any(c["id"] == credential_id for c in record["credentials"]):
            return False
        record["credentials"] = [c for c in record["credentials"] if c["id"] != credential_id]
        self.vault.save_record(f"passkeys/{b64(handle)}", record, version)
        return True

    # ---- registration (signed in)
    def register_begin(self, person: dict) -> tuple:
        handle = self._handle(person, create=True)
        record = self._record(handle)[0] or {}
        if len(record.get("credentials", [])) >= MOST_PASSKEYS:
            raise PasskeyRefused(f"already {MOST_PASSKEYS} passkeys")
        existing = [AttestedCredentialData(unb64(c["data"])) for c in record.get("credentials", [])]
        options, state = self.server.register_begin(
            PublicKeyCredentialUserEntity(id=handle, name=person["name"], display_name=person["name"]),
            existing, resident_key_requirement=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED)
        return dict(options), {"challenge": state["challenge"], "handle": b64(handle)}

    def register_complete(self, person: dict, state: dict, response: dict, name: str) -> str:
        try:
            auth_data = self.server.register_complete(
                {"challenge": state["challenge"], "user_verification": UserVerificationRequirement.REQUIRED}, response)
        except (ValueError, KeyError, TypeError) as e:
            raise PasskeyRefused(f"registration did not verify: {e}") from None
        handle = unb64(state["handle"])
        if self._handle(person, create=False) != handle:
            raise PasskeyRefused("registration for another person")
        record, version = self._record(handle)
        record = record or {"credentials": []}
        record.update(person={k: person[k] for k in ("provider", "subject", "name")},
                      claims=list(person.get("claims", [])))
        credential = auth_data.credential_data
        record["credentials"].append({
            "id": b64(credential.credential_id), "data": b64(bytes(credential)), "sign_count": auth_data.counter,
            "name": (name.strip() or "passkey")[:NAME_LENGTH],
            "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")})
        self.vault.save_record(f"passkeys/{b64(handle)}", record, version)
        return b64(credential.credential_id)

    # ---- sign-in with a passkey alone
    def sign_in_begin(self) -> tuple:
        options, state = self.server.authenticate_begin(user_verification=UserVerificationRequirement.REQUIRED)
        return dict(options), {"challenge": state["challenge"]}

    def sign_in_complete(self, state: dict, response: dict) -> dict:
        """The person's record (person, claims) whose passkey signed this challenge."""
        try:
            handle = unb64(response["response"]["userHandle"])
        except (KeyError, TypeError, ValueError):
            raise PasskeyRefused("the assertion names no user (not a discoverable credential)") from None
        return self._verified(handle, state["challenge"], response)[0]

    # ---- an approval of one staged command (the command gate): this person's passkey, this challenge
    def approval_begin(self, person: dict, challenge: bytes) -> dict:
        """Options for an assertion over `challenge` (it binds the staged command: portal/gate.py) by one
        of this person's own passkeys, with user verification."""
        handle = self._handle(person, create=False)
        record = self._record(handle)[0] if handle else None
        if not record or not record.get("credentials"):
            raise PasskeyRefused("no passkey registered: register one on the passkeys page first")
        options, _ = self.server.authenticate_begin(
            [AttestedCredentialData(unb64(c["data"])) for c in record["credentials"]],
            user_verification=UserVerificationRequirement.REQUIRED, challenge=challenge)
        return dict(options)

    def approval_complete(self, person: dict, challenge: str, response: dict) -> str:
        """The id of the person's passkey that signed `challenge` (websafe base64), user verified."""
        handle = self._handle(person, create=False)
        if handle is None:
            raise PasskeyRefused("no passkey registered")
        return self._verified(handle, challenge, response)[1]

    def _verified(self, handle: bytes, challenge: str, response: dict) -> tuple:
        """(the record, the credential id) of the handle's passkey that signed `challenge` with user
        verification; its sign count moved on. PasskeyRefused if not."""
        record, version = self._record(handle)
        if not record or not record.get("credentials"):
            raise PasskeyRefused("no passkeys for that user handle")
        stored = {c["id"]: c for c in record["credentials"]}
        try:
            used = self.server.authenticate_complete(
                {"challenge": challenge, "user_verification": UserVerificationRequirement.REQUIRED},
                [AttestedCredentialData(unb64(c["data"])) for c in record["credentials"]], response)
        except (ValueError, KeyError, TypeError) as e:
            raise PasskeyRefused(f"assertion did not verify: {e}") from None
        counter = AuthenticationResponse.from_dict(response).response.authenticator_data.counter
        entry = stored[b64(used.credential_id)]
        if counter and counter <= entry["sign_count"]:  # a cloned authenticator replays an old count
            raise PasskeyRefused(f"sign count went back ({counter} after {entry['sign_count']})")
        entry["sign_count"] = counter
        self.vault.save_record(f"passkeys/{b64(handle)}", record, version)
        return record, entry["id"]
