"""portal: the Level-0 view and sign-in, on the gateways, behind nginx (roles/gateway.py).

A Python web service (starlette, uvicorn, authlib: Debian's packages) on 127.0.0.1 only, run by
systemd under a user of its own made at start (DynamicUser), with no privileges and a read-only
system. It keeps nothing on disk: sessions live in its memory, the providers' client secrets in
Vault (KV), read with an AppRole of its own (not the gateway's), whose secret_id systemd hands it
from RAM (LoadCredential). One switch: portal_enabled.
"""

import json
from io import BytesIO, StringIO
from urllib.parse import urlsplit
from typing import Annotated

from pydantic import Strict, model_validator
from pyinfra import host, inventory
from pyinfra.api import deploy
from pyinfra.operations import files, python, systemd
from pyinfra.operations.util import any_changed

from toskit import operations
from toskit.bundle import zipapp
from toskit.defaults import ALL_DEFAULTS
from toskit.facts import VaultLogin
from toskit.gate_data import CommandGateData, tenant_policy
from toskit.gateway import BROKER_GROUP, CLUSTER_CLIENT_CERTIFICATE, PORTAL_SOURCE
from toskit.host_certificates import CLUSTER_CA
from toskit.portal_data import ProviderEntry, ProviderName, resolved
from toskit.schema import DataError
from toskit.schema.model import refuse_key
from toskit.schema.net import HttpsUrl, network_of
from toskit.schema.types import (DurationText, MountName, NonEmpty, Optional, PackageName, Switch, duration_seconds,
                                 matching, whole)
from toskit.templating import TEMPLATES
from toskit.tenants import TenantsData, tenants_of
from toskit.vault_data import HOST_VAULT_CA

PACKAGES_KEY = "portal_packages"
BUNDLE = "/usr/local/lib/tos/tos-portal.pyz"
SETTINGS = "/etc/tos/portal.json"
PROVIDER_CAS = "/etc/tos/portal-ca"
CREDENTIALS = "/run/tos/portal"  # the portal's AppRole (root only; systemd hands it to the service)
UNIT = "/etc/systemd/system/tos-portal.service"
GATEWAY_TOOL = "/usr/local/sbin/tos-cert"  # its enrolment and Vault check (--portal)

KvPrefix = Annotated[str, Strict(), matching(
    r"[a-z0-9_-]+(/[a-z0-9_-]+)*", "is not a KV path", "write a path such as 'tos/portal' (a-z, 0-9, _ - and /)", 128)]


# The tenants' `people` lists name the providers below (toskit/tenants.py); the command gate's policy
# goes from here to each session (toskit/gate_data.py: its keys).
class Data(TenantsData, CommandGateData):
    # The portal on the gateways (the Level-0 view and sign-in); False: nginx serves nothing but TLS.
    portal_enabled: Switch = True
    # What the portal runs on (Debian's): the web framework and server, OIDC/OAuth client, WebAuthn
    # (passkeys), Vault client, the nodes' reports' schema (the broker's placement), and WebSockets
    # (session channels: the browser's through uvicorn, relayed to the node's).
    portal_packages: NonEmpty(PackageName) = ["python3-starlette", "python3-uvicorn", "python3-authlib",
                                              "python3-httpx", "python3-jinja2", "python3-python-multipart",
                                              "python3-fido2", "python3-hvac", "python3-pydantic",
                                              "python3-websockets"]
    # The address browsers open; redirect URIs (…/auth/callback/<provider>) hang off it.
    # None: https://<gateway_server_name>.
    portal_public_url: Optional[HttpsUrl] = None
    # Sign-in providers by name: {"corp": {"issuer": "https://sso.example.org", "client_id": "tos"},
    # "google": {"preset": "google", "client_id": "…"}}; each entry's keys: toskit/portal_data.py.
    # Client secrets are never here: Vault KV, <portal_kv_mount>/<portal_kv_prefix>/oidc/<name>.
    portal_providers: dict[ProviderName, ProviderEntry] = {}
    # Where those client secrets are (KV version 2).
    portal_kv_mount: MountName = "tos-kv"
    portal_kv_prefix: KvPrefix = "tos/portal"
    # A signed-in session ends after this long without a request, and this long after sign-in.
    portal_session_idle: DurationText(86400, 60) = "30m"
    portal_session_max: DurationText(7 * 86400, 300) = "12h"
    # Sign-in attempts per minute from one client address (nginx limit_req; beyond: HTTP 429).
    portal_sign_in_rate: whole(1, 600) = 20
    # How long the broker waits for a node's report before passing the node over (all nodes are
    # asked at once). Units: s, m.
    portal_node_timeout: DurationText(60, 1) = "5s"
    # The portal's port on 127.0.0.1 (nginx proxies to it; nothing else can reach it).
    portal_port: whole(1024, 65535) = 8400
    # The name on the Level-0 view.
    portal_title: Annotated[str, Strict(), matching(r"[A-Za-z0-9]([A-Za-z0-9 ._-]{0,22}[A-Za-z0-9])?", "is not a short plain title",
                                                    "write up to 24 letters, digits, spaces, . _ -", 24)] = "TOS"

    @model_validator(mode="after")
    def _people_name_providers(self):
        for index, tenant in enumerate(self.tenants if self.portal_enabled else []):
            for provider in tenant.people or {}:
                if provider not in self.portal_providers:
                    refuse_key(f"tenants[{index}].people.{provider}", provider, "names no provider of portal_providers",
                               f"add '{provider}' to portal_providers, or use one of: "
                               f"{', '.join(self.portal_providers) or '(none yet)'}")
        return self


DEFAULTS = Data.defaults()


def portal_access(data):
    from toskit.vault_portal import PortalAccess
    return PortalAccess(gateway=host.name, cidr=data.gateway_vault_cidr or network_of(data.cluster_ip),
                        kv_mount=data.portal_kv_mount, kv_prefix=data.portal_kv_prefix,
                        secret_id_ttl=data.vault_secret_id_ttl)


def bundle() -> bytes:
    return zipapp(b"import sys\nfrom tos_portal.__main__ import main\nsys.exit(main())\n", "tos_portal", PORTAL_SOURCE,
                  ("*.py", "*.html", "*.css", "*.js", "*.svg"))


def portal_json(data, checked: Data, settings, vault_ca) -> str:
    """/etc/tos/portal.json: what the portal needs (no secret in it)."""
    providers = [resolved(name, entry, f"{PROVIDER_CAS}/{name}.pem" if entry.ca_file else None)
                 for name, entry in checked.portal_providers.items()]
    tenants = [{"id": t.id, "enabled": t.enabled, "people": t.people or {}, "memory": t.quotas.memory,
                "gate": tenant_policy(checked, t.command_gate) if checked.command_gate_enabled else None}
               for t in tenants_of(host.name, data)]
    return json.dumps({
        "public_url": origin(data.portal_public_url or f"https://{data.gateway_server_name}"),
        "title": data.portal_title, "listen_port": data.portal_port,
        "session_idle": duration_seconds(data.portal_session_idle),
        "session_max": duration_seconds(data.portal_session_max),
        "providers": providers, "tenants": tenants,
        "vault": {"addr": data.vault_addr or settings.addr, "ca_file": vault_ca, "approle_mount": settings.approle_mount,
                  "kv_mount": data.portal_kv_mount, "kv_prefix": data.portal_kv_prefix,
                  "credentials": None},  # None: systemd's $CREDENTIALS_DIRECTORY
        "broker": {"cluster_ca": CLUSTER_CA, "client_certificate": CLUSTER_CLIENT_CERTIFICATE, "nodes": node_doors(),
                   "report_timeout": duration_seconds(data.portal_node_timeout)},
    }, indent=2, sort_keys=True) + "\n"


def node_doors() -> list:
    """The nodes the broker may place sessions on: each node of the inventory with its node API on,
    reached at its cluster address and checked by its name."""
    return [{"name": node.name, "address": node.data.cluster_ip,
             "port": node.data.get("node_api_port") or ALL_DEFAULTS["node_api_port"]}
            for node in inventory.get_group("nodes", [])
            if node.data.get("node_api_enabled", ALL_DEFAULTS["node_api_enabled"])]


def origin(url: str) -> str:
    """The URL as a browser's Origin header names it (no default port, no trailing slash): what
    the portal compares requests and passkey ceremonies against."""
    parts = urlsplit(url)
    return f"https://{parts.hostname}" + (f":{parts.port}" if parts.port not in (None, 443) else "")


def apply_changes(settings, access) -> None:
    from toskit.vault_portal import apply
    apply(settings, settings.client(), access)


@deploy("TOS portal", data_defaults=ALL_DEFAULTS)
def portal():
    from toskit.vault import VaultError, VaultSettings
    checked = Data.check(host.name, host.data)
    data = host.data
    if not data.portal_enabled:
        systemd.service(name="No portal (portal_enabled is False)", service="tos-portal.service", running=False,
                        enabled=False, _ignore_errors=True)
        files.file(name="No portal unit", path=UNIT, present=False)
        return
    if not checked.portal_providers:
        raise DataError(host.name, "portal_providers", {}, "is empty, and the portal signs people in through a provider",
                        "add a provider (README: the front door), or set portal_enabled = False")
    settings = VaultSettings.from_data(host.name, data)
    access = portal_access(data)
    from toskit.vault_portal import drift, missing_secrets
    try:
        client = settings.client()
        changes = drift(settings, client, access)
        missing = missing_secrets(settings, client, access, checked.portal_providers)
    except VaultError as e:
        raise DataError(host.name, "portal_kv_mount" if "portal_kv_mount" in str(e) else "vault_token_file",
                        data.portal_kv_mount, str(e), "fix what the message names; nothing was changed") from None
    if missing:
        raise DataError(host.name, "portal_providers", ", ".join(missing),
                        f"has no client secret in Vault at {access.kv_mount}/{access.secret_path(missing[0])}",
                        f"store each provider's secret there: `bao secrets enable -path={access.kv_mount} -version=2 kv` "
                        f"(once), then `bao kv put {access.kv_mount}/{access.secret_path(missing[0])} client_secret=-` "
                        "(reads it from stdin, not argv)")
    if changes:
        python.call(name=f"Vault: {'; '.join(changes)}", function=apply_changes, settings=settings, access=access)

    operations.put(name="The portal's credential folder at boot", src=StringIO(f"d {CREDENTIALS} 0700 root root -\n"),
                   dest="/etc/tmpfiles.d/tos-portal.conf", mode="644")
    files.directory(name="The portal's credential folder (tmpfs, root only)", path=CREDENTIALS, user="root",
                    group="root", mode="700")
    from toskit.vault import enrol, secret_id_fresh
    enrolled = None
    if host.get_fact(VaultLogin, tool=GATEWAY_TOOL, args="--portal") != "ok" or any("approle" in c for c in changes) \
            or not secret_id_fresh(settings, settings.client(), access.role, data.vault_secret_id_ttl):
        enrolled = python.call(name="Enrol the portal with Vault (its own AppRole; secret_id by response wrapping)",
                               function=enrol, settings=settings, role=access.role,
                               tool=f"{GATEWAY_TOOL} enrol --portal", folder=CREDENTIALS)

    cas = [operations.put(name=f"CA of provider {name}", src=entry.ca_file, dest=f"{PROVIDER_CAS}/{name}.pem", mode="644")
           for name, entry in checked.portal_providers.items() if entry.ca_file]
    config = operations.put(name="The portal's settings (no secret in them)", dest=SETTINGS, mode="644",
                            src=StringIO(portal_json(data, checked, settings, HOST_VAULT_CA if settings.ca_file else None)))
    program = operations.put(name="Install tos-portal", src=BytesIO(bundle()), dest=BUNDLE, mode="644")
    unit = operations.template(name="tos-portal.service, sandboxed", src=TEMPLATES / "gateway" / "tos-portal.service.j2",
                               dest=UNIT, bundle=BUNDLE, credentials=CREDENTIALS, broker_group=BROKER_GROUP)
    systemd.daemon_reload(name="Load tos-portal.service", _if=unit.did_change)
    systemd.service(name="Run the portal", service="tos-portal.service", running=True, enabled=True)
    systemd.service(name="Restart the portal for its new program, settings or credential", service="tos-portal.service",
                    restarted=True, _if=any_changed(*[op for op in (config, program, unit, enrolled, *cas) if op]))
