"""Tenants and their quotas, as declared in group_data: parsed, defaulted and validated.

Everything here runs on the operator's machine before any host is contacted. A tenant id ends up
in unit names, network names, file paths and commands, so it is held to a strict pattern rather
than escaped; sizes need an explicit unit, so "512" can never silently mean bytes.
"""

import re
from dataclasses import dataclass

from .validate import DataError

TENANT_ID = re.compile(r"^[a-z][a-z0-9]{1,23}$")
DURATION = re.compile(r"^(?P<number>[0-9]+)(?P<unit>[smh])$")
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600}
SIZE = re.compile(r"^(?P<number>[0-9]+(?:\.[0-9]+)?)(?P<unit>[KMGT])$")
UNITS = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}

# Quotas every tenant gets unless it sets its own. Each is documented in roles/quotas.py.
QUOTA_KEYS = ("cpu", "memory", "swap", "pids", "disk_read", "disk_write", "volume_size")


@dataclass(frozen=True)
class Quotas:
    cpu: float          # CPU cores (0.5 = half a core), enforced as a CFS quota
    memory: int         # bytes of RAM
    swap: int           # bytes of swap on top of memory (0: none)
    pids: int           # processes and threads
    disk_read: int      # bytes per second from the node's container disk
    disk_write: int     # bytes per second to the node's container disk
    volume_size: int    # bytes of the tenant's encrypted volume


@dataclass(frozen=True)
class Tenant:
    id: str
    quotas: Quotas
    enabled: bool = True  # False: Vault refuses its volume key to every node (vault role)
    hibernate_after: int | None = None  # seconds; None: the site's session_hibernate_after

    @property
    def slice(self) -> str:
        return f"tos-tenant-{self.id}.slice"

    @property
    def network(self) -> str:
        return f"tos-tenant-{self.id}"


def parse_size(host: str, key: str, value, minimum: int) -> int:
    """'512M' -> bytes. The unit is required: K, M, G or T (powers of 1024)."""
    match = SIZE.match(value) if isinstance(value, str) else None
    if not match:
        raise DataError(host, key, value, "is not a size with a unit",
                        f"write {key} like '512M' or '2G' (K, M, G, T: powers of 1024)")
    size = int(float(match["number"]) * UNITS[match["unit"]])
    if size < minimum:
        raise DataError(host, key, value, f"is below the minimum of {minimum // 1024**2}M",
                        f"raise {key} to at least {minimum // 1024**2}M")
    return size


def parse_duration(host: str, key: str, value) -> int:
    """'30m' -> 1800 (seconds). The unit is required: s, m or h."""
    match = DURATION.match(value) if isinstance(value, str) else None
    if not match:
        raise DataError(host, key, value, "is not a duration with a unit",
                        f"write {key} like '90s', '30m' or '2h'")
    return int(match["number"]) * DURATION_UNITS[match["unit"]]


def _number(host: str, key: str, value, kind, low, high):
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int) \
            or not low <= value <= high:
        raise DataError(host, key, value, f"is not a {'number' if kind is float else 'whole number'} "
                        f"from {low} to {high}", f"set {key} to a value from {low} to {high}")
    return kind(value)


def parse_quotas(host: str, key: str, raw: dict) -> Quotas:
    if not isinstance(raw, dict):
        raise DataError(host, key, raw, "is not a mapping of quota names to values",
                        f"write {key} as {{'memory': '512M', ...}}")
    unknown = sorted(set(raw) - set(QUOTA_KEYS))
    if unknown:
        raise DataError(host, key, raw, f"has unknown quota {unknown[0]!r}",
                        f"use only: {', '.join(QUOTA_KEYS)}")
    missing = [q for q in QUOTA_KEYS if q not in raw]
    if missing:
        raise DataError(host, key, raw, f"lacks {missing[0]!r}", "set it in tenant_quota_defaults")
    return Quotas(
        cpu=_number(host, f"{key}.cpu", raw["cpu"], float, 0.01, 256),
        memory=parse_size(host, f"{key}.memory", raw["memory"], 64 * 1024**2),
        swap=0 if raw["swap"] in (0, "0") else parse_size(host, f"{key}.swap", raw["swap"], 1024**2),
        pids=_number(host, f"{key}.pids", raw["pids"], int, 16, 1_000_000),
        disk_read=parse_size(host, f"{key}.disk_read", raw["disk_read"], 1024**2),
        disk_write=parse_size(host, f"{key}.disk_write", raw["disk_write"], 1024**2),
        volume_size=parse_size(host, f"{key}.volume_size", raw["volume_size"], 64 * 1024**2),
    )


def parse_tenants(host: str, tenants, quota_defaults) -> list:
    """Validates `tenants` (a list of {'id': ..., 'quotas': {...}}) and fills in default quotas."""
    if not isinstance(tenants, (list, tuple)):
        raise DataError(host, "tenants", tenants, "is not a list", "write tenants as a list of {'id': ...}")
    parse_quotas(host, "tenant_quota_defaults", quota_defaults)
    seen, result = set(), []
    for index, entry in enumerate(tenants):
        key = f"tenants[{index}]"
        if not isinstance(entry, dict) or set(entry) - {"id", "quotas", "enabled", "hibernate_after"}:
            raise DataError(host, key, entry, "is not {'id': ..., 'quotas': {...}, 'enabled': ..., "
                            "'hibernate_after': ...}",
                            "give each tenant an 'id' and, optionally, 'quotas', 'enabled' and 'hibernate_after'")
        tenant_id = entry.get("id")
        if not isinstance(tenant_id, str) or not TENANT_ID.match(tenant_id):
            raise DataError(host, f"{key}.id", tenant_id,
                            "is not a tenant id (a-z then a-z/0-9, 2 to 24 characters)",
                            "use a short lower-case name such as 'acme' or 't42'")
        if tenant_id in seen:
            raise DataError(host, f"{key}.id", tenant_id, "is declared twice", "give every tenant its own id")
        seen.add(tenant_id)
        quotas = parse_quotas(host, f"{key}.quotas", {**quota_defaults, **(entry.get("quotas") or {})})
        enabled = entry.get("enabled", True)
        if not isinstance(enabled, bool):
            raise DataError(host, f"{key}.enabled", enabled, "is not True or False",
                            "set enabled to False to lock the tenant out of its volume, else leave it out")
        hibernate_after = entry.get("hibernate_after")
        if hibernate_after is not None:
            hibernate_after = parse_duration(host, f"{key}.hibernate_after", hibernate_after)
        result.append(Tenant(tenant_id, quotas, enabled, hibernate_after))
    return result
