"""The portal's settings: /etc/tos/portal.json, written (and validated) by the deploy's portal role."""

import json
from dataclasses import dataclass
from pathlib import Path

SETTINGS = Path("/etc/tos/portal.json")


@dataclass(frozen=True)
class Provider:
    """A sign-in provider. kind "oidc": an OpenID Connect issuer (discovery, ID token);
    kind "oauth2": plain OAuth 2 with a user API (GitHub), no ID token."""
    name: str
    title: str
    kind: str
    client_id: str
    scopes: tuple
    claim: str  # the claim (or user API field) that names a person to the tenants' people lists
    issuer: str | None = None
    authorize_url: str | None = None
    token_url: str | None = None
    userinfo_url: str | None = None
    ca_file: str | None = None  # a private issuer's CA; None: the system's trust store


@dataclass(frozen=True)
class Tenant:
    id: str
    enabled: bool
    people: dict  # provider name -> claim values of this tenant's people
    memory: int = 0  # bytes its session may use (placement needs a node with that much available)
    gate: dict | None = None  # its command gate's policy (toskit/gate_data.py tenant_policy); None: no gate


@dataclass(frozen=True)
class NodeDoor:
    name: str      # as its certificate names it (the cluster CA's)
    address: str   # its cluster address
    port: int      # its node API's (roles/node_api.py)


NODE_TIMEOUT = 5.0  # seconds for a node's report, or to open a channel there (portal_node_timeout's default)


@dataclass(frozen=True)
class BrokerAccess:
    cluster_ca: str           # nodes' certificates are checked by it
    client_certificate: str   # this gateway's, key and chain (tos-cert renews it; re-read when it changes)
    nodes: tuple
    report_timeout: float = NODE_TIMEOUT  # a slower node is passed over


@dataclass(frozen=True)
class VaultAccess:
    addr: str
    ca_file: str | None
    approle_mount: str
    kv_mount: str
    kv_prefix: str  # client secrets at <kv_mount>/data/<kv_prefix>/oidc/<provider>, key client_secret
    credentials: str | None  # folder holding role-id and secret-id; None: systemd's $CREDENTIALS_DIRECTORY


@dataclass(frozen=True)
class Settings:
    public_url: str  # what browsers open, e.g. https://tos.example.org (redirect URIs hang off it)
    providers: tuple
    tenants: tuple
    vault: VaultAccess
    broker: BrokerAccess | None = None  # None: no node to place sessions on
    session_idle: int = 1800  # seconds without a request before a signed-in session ends
    session_max: int = 43200  # seconds after sign-in when it ends regardless
    listen_port: int = 8400  # on 127.0.0.1 only: nginx is the way in
    title: str = "TOS"

    def tenant(self, tenant_id: str) -> Tenant | None:
        return next((t for t in self.tenants if t.id == tenant_id), None)

    def provider(self, name: str) -> Provider | None:
        return next((p for p in self.providers if p.name == name), None)

    def tenants_of(self, provider: str, values) -> list:
        """The tenants whose people lists hold one of `values` (a person's claim values at
        `provider`); e-mail addresses compared without case. The deploy refuses a value in two
        tenants, but a list claim (groups) can still match two: the caller refuses that."""
        found = self.provider(provider)
        fold = (lambda v: v.casefold()) if found and found.claim == "email" else (lambda v: v)
        values = {fold(v) for v in values}
        return [t for t in self.tenants if values & {fold(v) for v in t.people.get(provider, ())}]


def parse(raw: dict) -> Settings:
    providers = tuple(Provider(**{**p, "scopes": tuple(p["scopes"])}) for p in raw["providers"])
    tenants = tuple(Tenant(**t) for t in raw["tenants"])
    broker = raw.get("broker")
    broker = broker and BrokerAccess(**{**broker, "nodes": tuple(NodeDoor(**n) for n in broker["nodes"])})
    return Settings(**{**raw, "providers": providers, "tenants": tenants, "vault": VaultAccess(**raw["vault"]),
                       "broker": broker})


def load(path: Path = SETTINGS) -> Settings:
    return parse(json.loads(path.read_text()))
