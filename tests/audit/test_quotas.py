"""Audit of tenants' quotas on nodes: each tenant's slice exists, runs, and the kernel enforces
its limits (the cgroup v2 files themselves, not the unit files)."""

import json

import pytest

from tests.audit.sessions import tenant_cgroup
from toskit.check import DataView
from toskit.tenants import tenants_of

pytestmark = pytest.mark.groups("nodes")


@pytest.mark.control("tos-quota-01")
def test_every_node_declares_tenants(target):
    assert tenants_of(target.name, DataView(target.data)), "no tenants declared for this node"


@pytest.mark.control("tos-quota-01")
def test_the_tenants_slice_is_active_with_its_limits_in_the_kernel(host, tenant):
    q = tenant.quotas
    assert host.service(tenant.slice).is_running, tenant.slice

    def read(name: str) -> str:
        return host.file(f"{tenant_cgroup(tenant)}/{name}").content_string.strip()

    assert read("memory.max") == str(q.memory)
    assert read("memory.swap.max") == (str(q.swap) if q.swap else "0")
    assert read("pids.max") == str(q.pids)
    assert read("cpu.max") == f"{round(q.cpu * 100) * 1000} 100000"
    io_max = read("io.max")
    assert f"rbps={q.disk_read} wbps={q.disk_write}" in io_max, io_max


@pytest.fixture
def tenant_networks(target, host, request) -> dict:
    """Every declared tenant's network as Docker has it (one inspect per host), by name."""
    cache = request.config.__dict__.setdefault("_tos_tenant_networks", {})
    if target.name not in cache:
        names = [t.network for t in tenants_of(target.name, DataView(target.data))]
        # A missing one fails its own tenant's case: docker prints the others and exits 1.
        found = host.run(f"docker network inspect {' '.join(names)}").stdout.strip()
        cache[target.name] = {n["Name"]: n for n in json.loads(found or "[]")}
    return cache[target.name]


@pytest.mark.control("tos-quota-02")
def test_the_tenant_has_a_bridge_network_of_its_own(tenant, tenant_networks):
    assert tenant.network in tenant_networks, f"no docker network {tenant.network}"
    network = tenant_networks[tenant.network]
    assert network["Driver"] == "bridge" and network["Labels"].get("tos.tenant") == tenant.id
    subnet = network["IPAM"]["Config"][0]["Subnet"]
    shared = [name for name, other in tenant_networks.items()
              if name != tenant.network and other["IPAM"]["Config"][0]["Subnet"] == subnet]
    assert shared == [], f"{tenant.network} shares its subnet {subnet} with {shared}"
