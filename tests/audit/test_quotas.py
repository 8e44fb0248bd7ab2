"""Audit of tenants' quotas on nodes: each tenant's slice exists, runs, and the kernel enforces
its limits (the cgroup v2 files themselves, not the unit files)."""

import json

import pytest

from roles.quotas import cgroup_path
from toskit.tenants import tenants_of
from toskit.check import DataView

pytestmark = pytest.mark.groups("nodes")


def tenants(target):
    return tenants_of(target.name, DataView(target.data))


@pytest.mark.control("tenant-quotas")
def test_every_tenant_slice_is_active_with_its_limits_in_the_kernel(target, host):
    declared = tenants(target)
    assert declared, "no tenants declared for this node"
    for tenant in declared:
        q = tenant.quotas
        assert host.service(tenant.slice).is_running, tenant.slice
        def read(name, base=cgroup_path(tenant)):
            return host.file(f"{base}/{name}").content_string.strip()

        assert read("memory.max") == str(q.memory), tenant.id
        assert read("memory.swap.max") == (str(q.swap) if q.swap else "0"), tenant.id
        assert read("pids.max") == str(q.pids), tenant.id
        assert read("cpu.max") == f"{round(q.cpu * 100) * 1000} 100000", tenant.id
        io_max = read("io.max")
        assert f"rbps={q.disk_read} wbps={q.disk_write}" in io_max, (tenant.id, io_max)


@pytest.mark.control("tenant-network")
def test_every_tenant_has_its_own_bridge_network(target, host):
    subnets = set()
    for tenant in tenants(target):
        network = json.loads(host.check_output(f"docker network inspect {tenant.network}"))[0]
        assert network["Driver"] == "bridge" and network["Labels"].get("tos.tenant") == tenant.id
        subnets.add(network["IPAM"]["Config"][0]["Subnet"])
    assert len(subnets) == len(tenants(target))
