"""Tenants and their quotas, as declared in group_data: their schema, and the parsed form roles use.

A tenant id ends up in unit names, network names, file paths and commands, so it is held to a
strict pattern rather than escaped; sizes need an explicit unit, so "512" can never silently mean
bytes.
"""

import base64
import hashlib
import re
from dataclasses import dataclass
from typing import Annotated, Any, Optional

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Strict, model_validator
from pydantic_core import PydanticCustomError

from .schema.errors import DataError
from .schema.model import RoleData, refuse_key, validate
from .schema.net import Network
from .gate_data import TenantGate
from .portal_data import PersonValue, ProviderName
from .schema.types import (Duration, Items, Literal, NonEmpty, Size, Switch, duration_seconds, number, refuse, size_bytes,
                           whole)

# What names a tenant's slice, network and Vault transit key (the node tool has its own copy).
TENANT_PREFIX = "tos-tenant-"

TENANT_ID = r"[a-z][a-z0-9]{1,23}"
MiB = 1024**2


def _tenant_id(value: str) -> str:
    if not re.fullmatch(TENANT_ID, value, re.ASCII):
        refuse("is not a tenant id (a-z then a-z/0-9, 2 to 24 characters)",
               "use a short lower-case name such as 'acme' or 't42'")
    return value


def _swap(value: Any) -> int:
    if value == 0 and type(value) is int or isinstance(value, str) and re.fullmatch(r"0+(\.0+)?[KMGT]?", value):
        return 0
    if not isinstance(value, str):
        refuse("is not 0 or a size with a unit", "write 0 (no swap) or a size like '512M'")
    return size_bytes(value, MiB, 4096)


TenantId = Annotated[str, Strict(), AfterValidator(_tenant_id)]
Memory = Size(64 * MiB, 4096)
Rate = Size(MiB)
# At least a few packets a second (a policer below that stalls TCP); at most what nft's byte
# limit holds (its burst, a quarter of the rate, is a 32-bit number).
NetworkRate = Size(64 * 1024, 1, 10 * 1024**3)
VolumeSize = Size(64 * MiB, 4096, 64 * 1024**4)  # whole 4 KiB LUKS sectors, at most 64T
Swap = Annotated[int, BeforeValidator(_swap)]


class QuotaValues(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    cpu: number(0.01, 256)
    memory: Memory
    swap: Swap
    pids: whole(16, 1_000_000)
    disk_read: Rate
    disk_write: Rate
    volume_read: Rate
    volume_write: Rate
    network_in: NetworkRate
    network_out: NetworkRate
    volume_size: VolumeSize


class QuotaOverrides(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    cpu: Optional[number(0.01, 256)] = None
    memory: Optional[Memory] = None
    swap: Optional[Swap] = None
    pids: Optional[whole(16, 1_000_000)] = None
    disk_read: Optional[Rate] = None
    disk_write: Optional[Rate] = None
    volume_read: Optional[Rate] = None
    volume_write: Optional[Rate] = None
    network_in: Optional[NetworkRate] = None
    network_out: Optional[NetworkRate] = None
    volume_size: Optional[VolumeSize] = None


class Egress(BaseModel):
    """One destination a tenant's sessions may connect to (tenant_network role)."""
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    network: Network                                # "0.0.0.0/0": anywhere not forbidden
    ports: Optional[NonEmpty(whole(1, 65535))] = None  # None: every port ([] is refused: it would read as all)
    protocol: Literal["tcp", "udp"] = "tcp"


class TenantEntry(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    id: TenantId
    quotas: Optional[QuotaOverrides] = None
    enabled: Switch = True  # False: Vault refuses its volume key to every node (vault role)
    hibernate_after: Optional[Duration()] = None  # None: the site's hibernation_after
    health_interval: Optional[Duration(3600)] = None  # None: the site's session_health_interval
    egress: Optional[Items(Egress)] = None  # None: the site's tenant_network_egress_default
    # Who may sign in to it at the gateway: provider name -> values of that provider's claim
    # (portal_providers: e.g. {"corp": ["ada@example.org"]}, or a group name for a groups claim).
    people: Optional[dict[ProviderName, NonEmpty(PersonValue)]] = None
    # Its own command gate rules over the site's: {"commands": {NAME: RULE}, "default": VERDICT}.
    command_gate: Optional[TenantGate] = None


def unique_ids(entries: list) -> list:
    seen, people = set(), {}
    for index, entry in enumerate(entries):
        if entry.id in seen:
            refuse_key(f"tenants[{index}].id", entry.id, "is declared twice", "give every tenant its own id")
        seen.add(entry.id)
        for provider, values in (entry.people or {}).items():
            for value in values:
                other = people.setdefault((provider, value), entry.id)
                if other != entry.id:  # a person signs in to one tenant
                    refuse_key(f"tenants[{index}].people.{provider}", value, f"is already one of tenant {other}'s people",
                               "list a person under one tenant only")
    return entries


@dataclass(frozen=True)
class Quotas:
    cpu: float          # CPU cores (0.5 = half a core), enforced as a CFS quota
    memory: int         # bytes of RAM
    swap: int           # bytes of swap on top of memory (0: none)
    pids: int           # processes and threads
    disk_read: int      # bytes per second from the node's container disk
    disk_write: int     # bytes per second to the node's container disk
    volume_read: int    # bytes per second from the tenant's encrypted volume (its home)
    volume_write: int   # bytes per second to the tenant's encrypted volume
    network_in: int     # bytes per second into its sessions from beyond the node
    network_out: int    # bytes per second out of its sessions to beyond the node
    volume_size: int    # bytes of the tenant's encrypted volume


@dataclass(frozen=True)
class Tenant:
    id: str
    quotas: Quotas
    enabled: bool = True
    hibernate_after: int | None = None  # seconds; None: the site's hibernation_after
    health_interval: int | None = None  # seconds; None: the site's session_health_interval
    egress: tuple | None = None  # Egress entries; None: the site's tenant_network_egress_default
    people: dict | None = None  # provider name -> claim values of the people who sign in to it
    command_gate: TenantGate | None = None  # its own command gate rules; None: the site's

    @property
    def slice(self) -> str:
        return f"{TENANT_PREFIX}{self.id}.slice"

    @property
    def volume_device(self) -> str:
        """Its volume's mapping while open (the node tool's luks.MAPPER_PREFIX names it too)."""
        return f"/dev/mapper/tos-vol-{self.id}"

    @property
    def network(self) -> str:
        return f"{TENANT_PREFIX}{self.id}"

    @property
    def bridge(self) -> str:
        """The network's bridge on the node: 'tos' and a digest of the id (an interface name has at
        most 15 characters; ids have up to 24). The firewall's rules name the tenant beside it."""
        digest = base64.b32encode(hashlib.sha256(self.id.encode()).digest()).decode().lower()
        return f"tos{digest[:12]}"


Tenants = Annotated[list[TenantEntry], Strict(), AfterValidator(unique_ids)]


class TenantsData(RoleData):
    """The tenants and their default quotas: data every node role reads (the quotas role's schema
    includes these keys, so `toskit.check` validates them with its other keys)."""
    # The tenants whose sessions this node may run: [{"id": "acme", "quotas": {...}}, ...].
    # An id is 2-24 characters, a-z then a-z/0-9; it names the tenant's slice and network.
    # Per tenant: 'quotas' (any of those below), 'enabled' (False: locked out of its volume),
    # 'hibernate_after' (else hibernation_after), 'health_interval' (else session_health_interval),
    # 'command_gate' (its own rules over command_gate_commands and command_gate_default).
    tenants: Tenants = []
    # Quotas of a tenant that sets none of its own. Sizes need a unit (K, M, G, T).
    tenant_quota_defaults: QuotaValues = {
        "cpu": 1,              # CPU cores (0.5 = half a core)
        "memory": "1G",        # RAM; the kernel OOM-kills inside the tenant's slice past it
        "swap": 0,             # swap on top of memory (0: none; hibernation replaces swap)
        "pids": 512,           # processes and threads
        "disk_read": "50M",    # bytes per second read from the container disk
        "disk_write": "50M",   # bytes per second written to the container disk
        # Bytes per second the session reads from and writes to its home (the encrypted volume;
        # so also the NFS traffic its I/O makes; checkpoints move outside it: README).
        "volume_read": "50M",
        "volume_write": "50M",
        # Bytes per second into and out of a tenant's sessions on a node, to and from anything
        # beyond the node (what its egress allows); at least 64K. Enforced by the tenant firewall.
        "network_in": "50M",
        "network_out": "50M",
        "volume_size": "2G",   # size of the tenant's encrypted volume (storage role), in 4K steps
    }

    @model_validator(mode="after")
    def _volumes_hold_memory(self):
        volumes_hold_memory(self.tenants, self.tenant_quota_defaults)
        return self


def merged_quotas(entries: list, defaults: QuotaValues) -> list:
    """Each tenant's quotas: its own, else the defaults (validated models in, plain dicts out)."""
    base = defaults.model_dump()
    return [{**base, **(entry.quotas.model_dump(exclude_none=True) if entry.quotas else {})} for entry in entries]


def volumes_hold_memory(entries: list, defaults: QuotaValues) -> None:
    """A checkpoint holds the session's memory and lands in its volume."""
    for index, quotas in enumerate(merged_quotas(entries, defaults)):
        if quotas["volume_size"] < quotas["memory"]:
            refuse_key(f"tenants[{index}].quotas.volume_size", quotas["volume_size"],
                       f"is smaller than the tenant's memory ({quotas['memory']} bytes): hibernation writes "
                       "the session's memory into its volume", "make volume_size at least memory")


def parse_tenants(host: str, tenants, quota_defaults) -> list:
    """Validates `tenants` (a list of {'id': ..., 'quotas': {...}}) and fills in default quotas."""
    parsed = validate(TenantsData, host, {"tenants": tenants, "tenant_quota_defaults": quota_defaults})
    return [Tenant(entry.id, Quotas(**quotas), entry.enabled, entry.hibernate_after, entry.health_interval,
                   None if entry.egress is None else tuple(entry.egress), entry.people, entry.command_gate)
            for entry, quotas in zip(parsed.tenants, merged_quotas(parsed.tenants, parsed.tenant_quota_defaults))]


def tenants_of(name: str, data) -> list:
    """The host's tenants (its `tenants` and `tenant_quota_defaults`), validated, quotas filled in."""
    return parse_tenants(name, data.tenants, data.tenant_quota_defaults)


def parse_duration(host: str, key: str, value) -> int:
    """'30m' -> 1800 (seconds), or a DataError naming host and key."""
    try:
        return duration_seconds(value)
    except PydanticCustomError as e:
        raise DataError(host, key, value, e.message(), e.context["fix"]) from None
