"""Helpers for audits that work inside tenants' live sessions (through docker on the node), and
where the kernel keeps a tenant's limits."""

import json

from toskit.check import DataView
from toskit.tenants import tenants_of


def tenant_cgroup(tenant) -> str:
    """The tenant slice's cgroup: systemd nests slices by the dashes in their names."""
    return f"/sys/fs/cgroup/tos.slice/tos-tenant.slice/tos-tenant-{tenant.id}.slice"


def probe(host, tenant: str, *attacks: list) -> list:
    """Runs attacks (each [name, args...]) in one exec inside the tenant's session; one result each."""
    argv = " -- ".join(" ".join(attack) for attack in attacks)
    lines = host.check_output(f"docker exec --user session tos-session-{tenant} tos-probe {argv}").splitlines()
    return [json.loads(line) for line in lines]


def inspect(host, tenant: str) -> dict:
    return json.loads(host.check_output(f"docker inspect tos-session-{tenant}"))[0]


def session_ip(host, tenant: str) -> str:
    return next(iter(inspect(host, tenant)["NetworkSettings"]["Networks"].values()))["IPAddress"]


def tenant_of(target, tenant_id: str):
    """The tenant as the target's data declares it, quotas filled in."""
    return next(t for t in tenants_of(target.name, DataView(target.data)) if t.id == tenant_id)


def quotas_of(target, tenant_id: str):
    return tenant_of(target, tenant_id).quotas


def egress_of(target, tenant_id: str) -> list:
    """The tenant's egress as its data declares it (its own, else the site's default)."""
    entry = next(t for t in target.data["tenants"] if t["id"] == tenant_id)
    return entry["egress"] if entry.get("egress") is not None else target.data.get("tenant_network_egress_default") or []
