"""TOS's keys in Vault (or OpenBao), managed from the operator's machine with hvac.

What the vault role makes, per node:
- the transit engine, and one transit key per tenant (`tos-tenant-<id>`, never exportable);
- a policy `tos-node-<node>` allowing, for each enabled tenant the node serves, only what a node
  needs: a new data key, decrypt, rewrap, rotate (metadata read for status);
- an AppRole `tos-node-<node>` with that policy, its secret_id and tokens bound to the node's
  address; a node receives its secret_id by response wrapping (see wrapped_secret_id).
Reads here never change anything (drift); apply() makes Vault match; both are idempotent.
"""

import datetime
import ipaddress
import os
import threading
import time
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

import hvac
import hvac.exceptions
import requests

from .schema import DataError
from .schema.types import duration_seconds
from .tenants import TENANT_PREFIX
from .vault_data import CREDENTIALS

KEY_PREFIX = TENANT_PREFIX  # a tenant's transit key: tos-tenant-<id>
ROLE_PREFIX = "tos-node-"
OPERATOR_POLICY = Path(__file__).resolve().parents[1] / "templates" / "vault" / "tos-operator.hcl"
# pyinfra applies every node's changes at once (greenlets; gevent makes this lock cooperative):
# shared parts such as the transit mount must be checked and made by one node's call at a time.
_APPLYING = threading.Lock()


class VaultError(Exception):
    """Vault refused or could not be reached; the message says which, and what to do."""


@dataclass(frozen=True)
class VaultSettings:
    addr: str
    ca_file: str | None
    token_source: str  # where the operator's token came from (never the token itself)
    transit_mount: str
    approle_mount: str

    @classmethod
    def from_data(cls, host: str, data) -> "VaultSettings":
        """Address, CA and token from the host's data, else the standard VAULT_* environment."""
        addr = data.vault_operator_addr or os.environ.get("VAULT_ADDR") or data.vault_addr
        if not addr or not addr.startswith("https://"):
            raise DataError(host, "vault_addr", addr, "is not an https:// address of Vault",
                            "set vault_addr in group_data (or VAULT_ADDR), e.g. https://vault.example.org:8200")
        ca_file = data.vault_ca_file or os.environ.get("VAULT_CACERT")
        if ca_file and not Path(ca_file).is_file():
            raise DataError(host, "vault_ca_file", ca_file, "is not a readable file",
                            "point vault_ca_file (or VAULT_CACERT) at the PEM of the CA that signed Vault's certificate")
        if data.vault_token_file:
            source = str(data.vault_token_file)
        elif os.environ.get("VAULT_TOKEN"):
            source = "VAULT_TOKEN"
        else:
            source = str(Path.home() / ".vault-token")
        return cls(addr, ca_file, source, data.vault_transit_mount, data.vault_approle_mount)

    def token(self) -> str:
        if self.token_source == "VAULT_TOKEN":
            return os.environ["VAULT_TOKEN"]
        try:
            return Path(self.token_source).read_text().strip()
        except OSError as e:
            raise VaultError(f"no Vault token: cannot read {self.token_source} ({e.strerror}); "
                             f"set vault_token_file, VAULT_TOKEN, or log in with `bao login`") from None

    def client(self) -> hvac.Client:
        return hvac.Client(url=self.addr, token=self.token(), verify=self.ca_file or True, timeout=10)


def node_policy(settings: VaultSettings, tenant_ids: list, cluster_sign: str = "") -> str:
    """HCL: exactly the paths a node needs, for exactly the tenants it serves (and are enabled),
    and the signing of its own certificate for the gateways' mutual TLS (cluster_sign)."""
    lines = ["# Written by the TOS vault role. A node may create, unwrap and rewrap its tenants'",
             "# volume keys; it can never read or export a transit key. It may have its own name",
             "# signed by the cluster CA (gateway -> node mutual TLS), and nothing else.",
             *cluster_sign.splitlines()]
    for tenant_id in sorted(tenant_ids):
        key = KEY_PREFIX + tenant_id
        for path, caps in ((f"datakey/plaintext/{key}", "update"), (f"decrypt/{key}", "update"),
                           (f"rewrap/{key}", "update"), (f"keys/{key}/rotate", "update"), (f"keys/{key}", "read")):
            lines.append(f'path "{settings.transit_mount}/{path}" {{ capabilities = ["{caps}"] }}')
    return "\n".join(lines) + "\n"


def host_approle(role: str, cidr: str, secret_id_ttl: str, token_ttl: str = "5m", token_max_ttl: str = "15m") -> dict:
    """An AppRole of one host's service: its tokens carry the policy named like the role and nothing
    else, and they and its secret_ids work only from the host's address; secret_ids any number of times."""
    return {"token_policies": [role], "secret_id_bound_cidrs": [cidr], "token_bound_cidrs": [cidr],
            "token_ttl": token_ttl, "token_max_ttl": token_max_ttl, "secret_id_ttl": secret_id_ttl,
            "secret_id_num_uses": 0}


@dataclass(frozen=True)
class NodeAccess:
    """What Vault must hold for one node."""
    node: str
    cidr: str
    tenant_ids: tuple        # every tenant the node serves: each gets a transit key
    enabled_ids: tuple       # those the node may unlock
    secret_id_ttl: str
    cluster_pki_mount: str = "tos-cluster-pki"
    cluster_cert_ttl: str = "72h"

    @property
    def role(self) -> str:
        return ROLE_PREFIX + self.node

    @property
    def cluster(self):
        """Its server certificate for the gateways' mutual TLS (vault_pki.py)."""
        from .vault_pki import cluster_node_role
        return cluster_node_role(self.node, self.cluster_pki_mount, self.cluster_cert_ttl)

    def policy(self, settings: VaultSettings) -> str:
        return node_policy(settings, list(self.enabled_ids), self.cluster.sign_policy())

    def approle_settings(self) -> dict:
        return host_approle(self.role, self.cidr, self.secret_id_ttl)


def _call(what: str, settings: VaultSettings, fn, *args, missing_ok: bool = False, **kwargs):
    """Runs one hvac call, turning its failures into a VaultError that says what to do.
    With missing_ok, a path that does not exist (404) returns None."""
    try:
        return fn(*args, **kwargs)
    except hvac.exceptions.InvalidPath:
        if missing_ok:
            return None
        raise VaultError(f"Vault at {settings.addr}: {what}: no such path") from None
    except hvac.exceptions.Forbidden:
        raise VaultError(f"Vault at {settings.addr} denied {what} to the token from {settings.token_source} "
                         f"(permission denied); use a token with the policy in "
                         f"templates/vault/{OPERATOR_POLICY.name}") from None
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as e:
        raise VaultError(f"Vault at {settings.addr} is unreachable while {what} "
                         f"({type(e).__name__}); nothing was changed") from None
    except hvac.exceptions.VaultError as e:
        raise VaultError(f"Vault at {settings.addr} refused {what}: {e}") from None


def enable_kv_v2(client: hvac.Client, mount: str, probe_path: str, timeout: float = 30.0) -> None:
    """Mounts a KV v2 engine and returns once it serves reads. A new mount upgrades itself in the
    background and meanwhile answers reads with 400 "Upgrading from non-versioned to versioned
    data" (on OpenBao, 1 read in 3 to 6 right after the mount, for ~20 ms; its config endpoint does not
    wait, so the probe is a read of probe_path, a path the caller may read)."""
    client.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.secrets.kv.v2.read_secret_metadata(probe_path, mount_point=mount)
            return
        except hvac.exceptions.InvalidPath:  # served: the path is just empty
            return
        except hvac.exceptions.InvalidRequest as e:
            if "Upgrading" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _mounted(settings: VaultSettings, client: hvac.Client, path: str, kind: str, auth: bool,
             key: str | None = None) -> bool:
    """Whether an engine (auth method) of this kind is mounted at path; another kind there is an
    error naming the data key that chose the path."""
    what = "listing auth methods" if auth else "listing secrets engines"
    lister = client.sys.list_auth_methods if auth else client.sys.list_mounted_secrets_engines
    listing = _call(what, settings, lister)
    entry = listing.get("data", listing).get(f"{path}/")
    if entry and entry["type"] != kind:
        raise VaultError(f"Vault path {path}/ holds a {entry['type']} engine, not {kind}; "
                         f"set {key or 'vault_' + kind + '_mount'} to a free path")
    return entry is not None


def drift(settings: VaultSettings, client: hvac.Client, access: NodeAccess) -> list:
    """What apply() would change for this node; [] when Vault already matches. Reads only."""
    changes = []
    transit = _mounted(settings, client, settings.transit_mount, "transit", auth=False)
    if not transit:
        changes.append(f"enable transit at {settings.transit_mount}/")
    for tenant_id in access.tenant_ids:
        key = KEY_PREFIX + tenant_id
        if not transit or _call(f"reading transit key {key}", settings, client.secrets.transit.read_key, key,
                                mount_point=settings.transit_mount, missing_ok=True) is None:
            changes.append(f"create transit key {key}")
    from .vault_pki import pki_drift
    return changes + pki_drift(settings, client, access.cluster) + \
        access_drift(settings, client, access.role, access.policy(settings), access.approle_settings())


def access_drift(settings: VaultSettings, client: hvac.Client, role: str, policy: str, approle: dict) -> list:
    """What apply_access would change: a host's policy (named as its AppRole) and its AppRole."""
    changes = []
    current = _call(f"reading policy {role}", settings, client.sys.read_acl_policy, role, missing_ok=True)
    if current is None or current["data"]["policy"] != policy:
        changes.append(f"write policy {role}")
    mounted = _mounted(settings, client, settings.approle_mount, "approle", auth=True)
    if not mounted:
        changes.append(f"enable approle at {settings.approle_mount}/")
    found = mounted and _call(f"reading approle {role}", settings, client.auth.approle.read_role,
                              role, mount_point=settings.approle_mount, missing_ok=True)
    if not found or not _role_matches(found["data"], approle):
        changes.append(f"write approle {role}")
    return changes


def apply_access(settings: VaultSettings, client: hvac.Client, role: str, policy: str, approle: dict) -> None:
    _call(f"writing policy {role}", settings, client.sys.create_or_update_acl_policy, role, policy)
    if not _mounted(settings, client, settings.approle_mount, "approle", auth=True):
        _call("enabling approle", settings, client.sys.enable_auth_method, "approle", path=settings.approle_mount)
    _call(f"writing approle {role}", settings, client.auth.approle.create_or_update_approle,
          role, mount_point=settings.approle_mount, **approle)


def _seconds(value) -> int:
    """A TTL as Vault returns it (seconds) or as the data writes it ('720h')."""
    return value if isinstance(value, int) else duration_seconds(value)


def _role_matches(current: dict, wanted: dict) -> bool:
    for key, value in wanted.items():
        have = current.get(key)
        if key == "ttl" or key.endswith("_ttl"):
            if _seconds(have or 0) != _seconds(value):
                return False
        elif key.endswith("_cidrs"):  # Vault reads 10.0.0.1/32 back as 10.0.0.1
            if {ipaddress.ip_network(c) for c in have or []} != {ipaddress.ip_network(c) for c in value}:
                return False
        elif have != value:
            return False
    return True


def apply(settings: VaultSettings, client: hvac.Client, access: NodeAccess) -> list:
    """Makes Vault hold what the node needs; returns what it changed."""
    with _APPLYING:
        return _apply(settings, client, access)


def _apply(settings: VaultSettings, client: hvac.Client, access: NodeAccess) -> list:
    changes = drift(settings, client, access)
    if not changes:
        return []
    if not _mounted(settings, client, settings.transit_mount, "transit", auth=False):
        _call("enabling transit", settings, client.sys.enable_secrets_engine, "transit", path=settings.transit_mount)
    for tenant_id in access.tenant_ids:
        # create_key leaves an existing key as it is; keys are never exportable.
        _call(f"creating transit key {KEY_PREFIX}{tenant_id}", settings, client.secrets.transit.create_key,
              KEY_PREFIX + tenant_id, key_type="aes256-gcm96", exportable=False, mount_point=settings.transit_mount)
    from .vault_pki import pki_apply
    pki_apply(settings, client, access.cluster)
    apply_access(settings, client, access.role, access.policy(settings), access.approle_settings())
    return changes


def role_id(settings: VaultSettings, client: hvac.Client, role: str) -> str:
    """An AppRole's role_id (tos-node-<node>, tos-gateway-<gateway>): an identifier, not a secret
    (useless without a secret_id)."""
    return _call(f"reading the role_id of {role}", settings, client.auth.approle.read_role_id,
                 role, mount_point=settings.approle_mount)["data"]["role_id"]


def wrapped_secret_id(settings: VaultSettings, client: hvac.Client, role: str, ttl: str = "120s") -> str:
    """Revokes the AppRole's earlier secret_ids, then mints a new one that only leaves Vault wrapped:
    the returned single-use token unwraps it once, within `ttl`. An intercepted token that was
    used first makes the host's unwrap fail, so the theft shows."""
    mount = settings.approle_mount
    listed = _call(f"listing the secret_ids of {role}", settings, client.auth.approle.list_secret_id_accessors,
                   role, mount_point=mount, missing_ok=True)
    for accessor in (listed or {"data": {"keys": []}})["data"]["keys"]:
        _call(f"revoking an old secret_id of {role}", settings, client.auth.approle.destroy_secret_id_accessor,
              role, accessor, mount_point=mount)
    response = _call(f"minting a secret_id for {role}", settings, client.auth.approle.generate_secret_id,
                     role, mount_point=mount, wrap_ttl=ttl)
    return response["wrap_info"]["token"]


def secret_id_fresh(settings: VaultSettings, client: hvac.Client, role: str, ttl: str) -> bool:
    """Whether the AppRole holds a secret_id with more than half of `ttl` left: past that the deploy
    enrols the host again, so a host deployed now and then never sees its credential expire."""
    mount = settings.approle_mount
    listed = _call(f"listing the secret_ids of {role}", settings, client.auth.approle.list_secret_id_accessors,
                   role, mount_point=mount, missing_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    for accessor in (listed or {"data": {"keys": []}})["data"]["keys"]:
        found = _call(f"reading a secret_id of {role}", settings, client.auth.approle.read_secret_id_accessor,
                      role, accessor, mount_point=mount, missing_ok=True)
        expires = (found or {}).get("data", {}).get("expiration_time")
        if expires and datetime.datetime.fromisoformat(expires.replace("Z", "+00:00")) - now \
                > datetime.timedelta(seconds=_seconds(ttl) / 2):
            return True
    return False


def enrol(state, host, settings: VaultSettings, role: str, tool: str, folder: str = CREDENTIALS) -> None:
    """Runs at deploy time (python.call): a fresh secret_id of the host's AppRole, wrapped, handed
    to the host (into `folder`, a root-only tmpfs folder), unwrapped there by its tool
    (`tos-session`, `tos-cert`): `<tool> vault-enrol` or `enrol`."""
    client = settings.client()
    host.put_file(StringIO(role_id(settings, client, role) + "\n"), f"{folder}/role-id")
    host.put_file(StringIO(wrapped_secret_id(settings, client, role) + "\n"), f"{folder}/wrapping-token")
    ok, output = host.run_shell_command(tool)
    if not ok:
        raise VaultError(f"{host.name}: enrolment failed: {output.stderr}")
