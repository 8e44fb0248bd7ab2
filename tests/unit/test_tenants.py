"""Tenant declarations are checked on the operator's machine, before any host is contacted."""

import pytest

from toskit.tenants import parse_tenants
from toskit.schema import DataError

DEFAULTS = {"cpu": 1, "memory": "1G", "swap": 0, "pids": 512, "disk_read": "50M", "disk_write": "50M",
            "volume_read": "50M", "volume_write": "50M", "network_in": "50M", "network_out": "50M",
            "volume_size": "2G"}


def test_defaults_fill_in_what_a_tenant_does_not_set():
    acme, beta = parse_tenants("node1", [{"id": "acme", "quotas": {"memory": "512M", "cpu": 0.5}},
                                         {"id": "beta"}], DEFAULTS)
    assert (acme.quotas.memory, acme.quotas.cpu, acme.quotas.pids) == (512 * 1024**2, 0.5, 512)
    assert beta.quotas.memory == 1024**3 and beta.quotas.swap == 0
    assert (acme.slice, acme.network) == ("tos-tenant-acme.slice", "tos-tenant-acme")


@pytest.mark.parametrize("tenants,key,reason", [
    ([{"id": "acme; rm -rf /"}], "tenants[0].id", "is not a tenant id"),
    ([{"id": "../etc"}], "tenants[0].id", "is not a tenant id"),
    ([{"id": "$(reboot)"}], "tenants[0].id", "is not a tenant id"),
    ([{"id": "Acme"}], "tenants[0].id", "is not a tenant id"),
    ([{"id": "a"}], "tenants[0].id", "is not a tenant id"),
    ([{"id": "acme"}, {"id": "acme"}], "tenants[1].id", "is declared twice"),
    ([{"id": "acme", "quotas": {"memory": "512"}}], "tenants[0].quotas.memory", "is not a size with a unit"),
    ([{"id": "acme", "quotas": {"memory": "-512M"}}], "tenants[0].quotas.memory", "is not a size with a unit"),
    ([{"id": "acme", "quotas": {"memory": "1M"}}], "tenants[0].quotas.memory", "below the minimum"),
    ([{"id": "acme", "quotas": {"cpu": -1}}], "tenants[0].quotas.cpu", "is not a number"),
    ([{"id": "acme", "quotas": {"cpu": "2"}}], "tenants[0].quotas.cpu", "is not a number"),
    ([{"id": "acme", "quotas": {"pids": 3}}], "tenants[0].quotas.pids", "is not a whole number"),
    ([{"id": "acme", "quotas": {"disk_write": "10M/s"}}], "tenants[0].quotas.disk_write", "is not a size"),
    ([{"id": "acme", "quotas": {"network_in": "32K"}}], "tenants[0].quotas.network_in", "below the minimum"),
    ([{"id": "acme", "quotas": {"volume_read": 1048576}}], "tenants[0].quotas.volume_read", "is not a size"),
    ([{"id": "acme", "quotas": {"gpu": 1}}], "tenants[0].quotas.gpu", "is not a key tenants[0].quotas may have"),
    ([{"id": "acme", "name": "x"}], "tenants[0].name", "is not a key tenants[0] may have"),
    ([{"id": "acme", "hibernate_after": 30}], "tenants[0].hibernate_after", "is not a duration with a unit"),
    ([{"id": "acme", "hibernate_after": "30 minutes"}], "tenants[0].hibernate_after", "is not a duration"),
    ([{"id": "acme", "health_interval": "2h"}], "tenants[0].health_interval", "is longer than 1h"),
    ([{"id": "acme", "health_interval": 5}], "tenants[0].health_interval", "is not a duration with a unit"),
    ("acme", "tenants", "is not a list"),
])
def test_hostile_or_malformed_declarations_are_refused(tenants, key, reason):
    with pytest.raises(DataError) as err:
        parse_tenants("node1", tenants, DEFAULTS)
    message = str(err.value)
    assert message.startswith(f"host node1: {key} = ") and reason in message and "fix:" in message


def test_hibernate_after_is_per_tenant_and_falls_back_to_the_site_default():
    acme, beta = parse_tenants("node1", [{"id": "acme", "hibernate_after": "2h"}, {"id": "beta"}], DEFAULTS)
    assert (acme.hibernate_after, beta.hibernate_after) == (7200, None)


def test_health_interval_is_per_tenant_and_falls_back_to_the_site_default():
    acme, beta = parse_tenants("node1", [{"id": "acme", "health_interval": "5s"}, {"id": "beta"}], DEFAULTS)
    assert (acme.health_interval, beta.health_interval) == (5, None)
