"""The portal's sign-in providers as data: their schema, the presets, and what the gateway is told.

A provider is an OpenID Connect issuer (preset or any standards-compliant one) or GitHub (OAuth 2
without an ID token). Its client secret is never data: it lives in Vault's KV at
<portal_kv_mount>/<portal_kv_prefix>/oidc/<provider name>, key client_secret.
"""

from typing import Annotated, Literal, Optional

from pydantic import BaseModel, ConfigDict, Strict, model_validator

from .schema.model import refuse_key
from .schema.net import IssuerUrl
from .schema.types import LocalPath, NonEmpty, matching

ProviderName = Annotated[str, Strict(), matching(
    r"[a-z][a-z0-9_-]{0,31}", "is not a provider name", "use a-z, 0-9, '_' and '-', e.g. 'corp' or 'google'", 32)]
ClaimName = Annotated[str, Strict(), matching(
    r"[A-Za-z_][A-Za-z0-9_.:-]*", "is not a claim name", "write the claim as the provider names it, e.g. 'email'", 64)]
Scope = Annotated[str, Strict(), matching(
    r"[\x21\x23-\x5b\x5d-\x7e]+", "is not an OAuth scope", "write one scope per item, e.g. 'openid'", 128)]
ClientId = Annotated[str, Strict(), matching(
    r"[\x21-\x7e]+", "is not a client id", "paste the client id the provider gave you (no spaces)", 256)]
Title = Annotated[str, Strict(), matching(
    r"[^\x00-\x1f\x7f<>&\"']+", "is not a plain title", "write a short title without markup, e.g. 'Corporate SSO'", 48)]
# A value of a person's claim: an e-mail address, a subject id, a group name.
PersonValue = Annotated[str, Strict(), matching(
    r"[^\x00-\x1f\x7f]+", "is not a claim value", "write the person's value of the provider's claim, e.g. 'ada@example.org'",
    256)]
DirectoryId = Annotated[str, Strict(), matching(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "is not an Entra ID tenant id",
    "write the directory (tenant) id, a GUID like 72f988bf-86f1-41af-91ab-2d7cd011db47", 36)]

# What each preset fills in. The default claims are the stable ones: Microsoft's `oid` (its docs
# warn against authorizing by e-mail), GitHub's numeric `id` (a login can be renamed and reused).
PRESETS = {
    "google": {"kind": "oidc", "title": "Google", "issuer": "https://accounts.google.com",
               "scopes": ["openid", "email", "profile"], "claim": "email"},
    "microsoft": {"kind": "oidc", "title": "Microsoft", "issuer": "https://login.microsoftonline.com/{directory}/v2.0",
                  "scopes": ["openid", "email", "profile"], "claim": "oid"},
    "github": {"kind": "oauth2", "title": "GitHub", "authorize_url": "https://github.com/login/oauth/authorize",
               "token_url": "https://github.com/login/oauth/access_token", "userinfo_url": "https://api.github.com/user",
               "scopes": ["read:user"], "claim": "id"},
}


class ProviderEntry(BaseModel):
    """One entry of portal_providers (the key is the provider's name)."""
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    client_id: ClientId
    preset: Optional[Literal["google", "microsoft", "github"]] = None  # None: an OIDC issuer of your own
    issuer: Optional[IssuerUrl] = None  # required without a preset: its discovery is <issuer>/.well-known/...
    title: Optional[Title] = None  # on the button; None: the preset's, else the name
    scopes: Optional[NonEmpty(Scope)] = None  # None: the preset's, else openid email profile
    claim: Optional[ClaimName] = None  # matched against the tenants' people; None: the preset's, else email
    directory: Optional[DirectoryId] = None  # the Entra ID tenant (microsoft preset only)
    ca_file: Optional[LocalPath] = None  # a private issuer's CA (PEM, copied to the gateway); None: system CAs

    @model_validator(mode="after")
    def _complete(self):
        if self.preset is None and self.issuer is None:
            refuse_key("issuer", None, "is not set, and a provider without a preset is an OIDC issuer",
                       "set issuer (e.g. 'https://sso.example.org/realms/staff'), or a preset")
        if self.preset is not None and self.issuer is not None:
            refuse_key("issuer", self.issuer, f"is set, but the {self.preset} preset names its own issuer",
                       "remove issuer, or remove the preset")
        if (self.preset == "microsoft") != (self.directory is not None):
            refuse_key("directory", self.directory, "belongs with the microsoft preset (and only there)",
                       "set directory to your Entra ID tenant id for the microsoft preset; remove it elsewhere")
        if self.preset != "github" and self.scopes is not None and "openid" not in self.scopes:
            refuse_key("scopes", self.scopes, "lacks 'openid', and an OIDC sign-in needs it", "add 'openid'")
        if self.preset == "microsoft" and self.claim in ("email", "upn", "preferred_username"):
            refuse_key("claim", self.claim, "is a value Entra ID lets users or admins of other directories set",
                       "match people by 'oid' (the default), or by 'groups'")
        return self


def resolved(name: str, entry: ProviderEntry, ca_path: str | None) -> dict:
    """The provider as the portal reads it (/etc/tos/portal.json); ca_path: where its CA is on the gateway."""
    preset = PRESETS.get(entry.preset or "", {"kind": "oidc", "scopes": ["openid", "email", "profile"],
                                              "claim": "email"})
    provider = {"name": name, "title": entry.title or preset.get("title") or name, "kind": preset["kind"],
                "client_id": entry.client_id, "scopes": list(entry.scopes or preset["scopes"]),
                "claim": entry.claim or preset["claim"], "ca_file": ca_path}
    if preset["kind"] == "oidc":
        provider["issuer"] = entry.issuer or preset["issuer"].format(directory=entry.directory)
    else:
        provider.update({key: preset[key] for key in ("authorize_url", "token_url", "userinfo_url")})
    return provider
