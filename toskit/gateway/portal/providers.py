"""Sign-in with the configured providers, through authlib (the protocol is authlib's, not ours).

OIDC: authorization code flow with PKCE (S256); authlib keeps state, nonce and the code verifier
in the person's server-side session, checks the state on return, and verifies the ID token
(signature from the provider's JWKS, issuer, audience, expiry, nonce). GitHub is OAuth 2 without
an ID token: state and PKCE, then its user API names the person.
"""

import ssl
from dataclasses import dataclass

import httpx
from authlib.integrations.starlette_client import OAuth, OAuthError
from authlib.jose.errors import JoseError
from starlette.concurrency import run_in_threadpool

from .settings import Provider, Settings
from .vault import PortalVault, SecretUnavailable

CLOCK_LEEWAY = 60  # seconds of clock difference allowed in the ID token's times
# ID token signatures accepted, whatever a discovery document offers: public-key ones only (no
# "none", no shared-secret HS*).
SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


def printable(text, limit: int = 200) -> str:
    """Text from outside (a provider's error, a query string) as one log-safe line."""
    return "".join(c if c.isprintable() else "?" for c in str(text))[:limit]


class SignInRefused(Exception):
    """The sign-in did not prove who the person is; the message is for the log, never the page."""


@dataclass(frozen=True)
class Person:
    provider: str
    subject: str  # stable id at the provider (OIDC `sub`, GitHub's numeric id)
    name: str
    claim_values: tuple  # what the tenants' people lists are matched against


def _tls(provider: Provider) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if provider.ca_file:
        context.load_verify_locations(provider.ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class Providers:
    def __init__(self, settings: Settings, vault: PortalVault):
        self.settings, self.vault = settings, vault
        self._oauth = OAuth()
        self._registered: set = set()

    def redirect_uri(self, provider: Provider) -> str:
        return f"{self.settings.public_url}/auth/callback/{provider.name}"

    async def _client(self, provider: Provider):
        """authlib's client for the provider, registered on first use with the secret from Vault."""
        if provider.name not in self._registered:
            secret = await run_in_threadpool(self.vault.client_secret, provider.name)
            options = {"scope": " ".join(provider.scopes), "code_challenge_method": "S256",
                       "verify": _tls(provider), "timeout": 10, "trust_env": False}
            if provider.kind == "oidc":
                self._oauth.register(provider.name, client_id=provider.client_id, client_secret=secret,
                                     server_metadata_url=provider.issuer.rstrip("/") + "/.well-known/openid-configuration",
                                     client_kwargs=options)
            else:
                self._oauth.register(provider.name, client_id=provider.client_id, client_secret=secret,
                                     authorize_url=provider.authorize_url, access_token_url=provider.token_url,
                                     client_kwargs=options)
            self._registered.add(provider.name)
        return self._oauth.create_client(provider.name)

    async def start(self, request, provider: Provider):
        """The redirect to the provider's authorization endpoint (state, nonce and PKCE kept in the
        session). Raises SecretUnavailable or SignInRefused."""
        try:
            client = await self._client(provider)
            if provider.kind == "oidc":
                await self._check_issuer(client, provider)
            return await client.authorize_redirect(request, self.redirect_uri(provider))
        except (httpx.HTTPError, OAuthError, ValueError) as e:
            raise SignInRefused(f"{provider.name}: the provider cannot be reached or read "
                                f"({type(e).__name__}: {printable(e)})") from None

    async def finish(self, request, provider: Provider) -> Person:
        """The person the provider vouches for, from its callback; SignInRefused otherwise."""
        try:
            client = await self._client(provider)
            if provider.kind == "oidc":
                return await self._finish_oidc(request, client, provider)
            return await self._finish_oauth2(request, client, provider)
        except SecretUnavailable:
            raise
        except (OAuthError, JoseError, httpx.HTTPError, ValueError, KeyError) as e:
            raise SignInRefused(f"{provider.name}: {type(e).__name__}: {printable(e)}") from None

    async def _check_issuer(self, client, provider: Provider) -> None:
        # OIDC Discovery 1.0, 4.3: the document must name the issuer it was fetched for.
        metadata = await client.load_server_metadata()
        if metadata.get("issuer") != provider.issuer:
            raise SignInRefused(f"{provider.name}: discovery names issuer {printable(metadata.get('issuer'))!r}, "
                                f"not {provider.issuer!r}")
        offered = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        metadata["id_token_signing_alg_values_supported"] = [a for a in offered if a in SIGNING_ALGORITHMS]

    async def _finish_oidc(self, request, client, provider: Provider) -> Person:
        await self._check_issuer(client, provider)
        token = await client.authorize_access_token(
            request, leeway=CLOCK_LEEWAY,
            claims_options={"iss": {"essential": True, "values": [provider.issuer]},
                            "aud": {"essential": True, "values": [provider.client_id]},
                            "sub": {"essential": True}, "exp": {"essential": True}})
        claims = token.get("userinfo")
        if not claims:  # authlib verifies an ID token only if one came: an OIDC sign-in needs one
            raise SignInRefused(f"{provider.name}: the token response carried no ID token")
        if provider.claim == "email" and claims.get("email_verified") is not True:
            raise SignInRefused(f"{provider.name}: the provider does not vouch for the e-mail address "
                                f"(email_verified is {printable(claims.get('email_verified'))!r})")
        return Person(provider.name, str(claims["sub"]), str(claims.get("name") or claims.get("email") or claims["sub"]),
                      _values(claims.get(provider.claim)))

    async def _finish_oauth2(self, request, client, provider: Provider) -> Person:
        token = await client.authorize_access_token(request)
        reply = await client.get(provider.userinfo_url, token=token)
        reply.raise_for_status()
        user = reply.json()
        return Person(provider.name, str(user["id"]), str(user.get("name") or user.get("login") or user["id"]),
                      _values(user.get(provider.claim)))


def _values(claim) -> tuple:
    """A claim as a tuple of strings (a group claim is a list, an e-mail claim one string)."""
    if claim is None:
        return ()
    if isinstance(claim, (list, tuple)):
        return tuple(str(v) for v in claim if isinstance(v, (str, int)))
    return (str(claim),) if isinstance(claim, (str, int)) else ()
