"""Templates and logic of the runtime and quotas roles, without hosts."""

import json
from types import SimpleNamespace

import jinja2
import pytest

from roles import quotas, runtime
from toskit.templating import JINJA_OPTIONS, TEMPLATES
from toskit.tenants import parse_tenants
from toskit.schema import DataError

ACME = parse_tenants("node1", [{"id": "acme", "quotas": {"cpu": 0.5, "memory": "256M", "pids": 128,
                                                         "disk_read": "20M", "disk_write": "10M"}}],
                     quotas.DEFAULTS["tenant_quota_defaults"])[0]


def render(template: str, data: dict, **context) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, **JINJA_OPTIONS)
    return env.from_string((TEMPLATES / template).read_text()).render(
        host=SimpleNamespace(data=SimpleNamespace(**data)), **context)


def test_daemon_json_is_valid_json_with_the_cis_settings():
    config = json.loads(render("daemon.json.j2", runtime.DEFAULTS))
    assert config["userns-remap"] == "dockremap"
    assert (config["icc"], config["no-new-privileges"], config["live-restore"], config["userland-proxy"]) == \
        (False, True, True, False)
    assert config["experimental"] is False and "hosts" not in config and "seccomp-profile" not in config
    assert set(config["default-ulimits"]) == {"nofile"}


def test_experimental_is_a_switch():
    assert json.loads(render("daemon.json.j2", {**runtime.DEFAULTS, "docker_experimental": True}))["experimental"]


@pytest.mark.parametrize("skip", [None, (runtime.DOCKER_DATA, runtime.DOCKERD)])
def test_audit_rules_watch_every_listed_path(skip):
    rules = render("audit-docker.rules.j2", {}, audit_watches=runtime.AUDIT_WATCHES,
                   skip_daemon_writes=skip).splitlines()
    watches = [line for line in rules if line.startswith("-w")]
    assert watches == [f"-w {path} -p wa -k docker" for _, path in runtime.AUDIT_WATCHES]
    never = [i for i, line in enumerate(rules) if line.startswith("-a never,exit")]
    if skip is None:
        assert never == []
    else:  # one rule, ahead of every watch (auditd: the first matching rule decides)
        assert [rules[i] for i in never] == [f"-a never,exit -F dir={skip[0]} -F exe={skip[1]}"]
        assert never[0] < rules.index(watches[0])


@pytest.mark.parametrize("key,value", [("docker_subid_count", 1000), ("docker_log_max_size", "10MB"),
                                       ("docker_experimental", "yes"), ("docker_userns_user", "dock remap"),
                                       ("docker_audit_daemon_writes", "no")])
def test_runtime_data_is_checked(key, value):
    with pytest.raises(DataError, match=f"host n1: {key} ="):
        runtime.Data.check("n1", {**runtime.DEFAULTS, key: value})


def test_slice_carries_every_quota():
    text = render("tenant.slice.j2", {}, tenant=ACME, io_devices=["/dev/vda"])
    assert "CPUQuota=50%\n" in text and f"MemoryMax={256 * 1024**2}\n" in text
    assert "MemorySwapMax=0\n" in text and "TasksMax=128\n" in text
    assert f"IOReadBandwidthMax=/dev/vda {20 * 1024**2}\n" in text
    assert f"IOWriteBandwidthMax=/dev/vda {10 * 1024**2}\n" in text


def test_drift_is_found_in_any_limit():
    disk = f"rbps={20 * 1024**2} wbps={10 * 1024**2}"
    volume = f"rbps={ACME.quotas.volume_read} wbps={ACME.quotas.volume_write}"
    live = {"memory.max": str(256 * 1024**2), "memory.swap.max": "0", "pids.max": "128",
            "cpu.max": "50000 100000", "io": {"254:0": disk}, "disks": {"/dev/vda": "254:0"}, "volume": None}
    expected = quotas.expected_limits(ACME, live)
    assert quotas.drifted(live, expected) == []
    assert quotas.drifted({**live, "memory.max": "max"}, expected) == ["memory.max"]
    assert quotas.drifted({**live, "io": {}}, expected) == ["io.max"]
    # A line left on a closed volume's old loop device is no drift; the open volume's is checked.
    assert quotas.drifted({**live, "io": {"254:0": disk, "7:3": volume}}, expected) == []
    opened = {**live, "volume": "7:0", "io": {"254:0": disk, "7:0": volume}}
    assert quotas.drifted(opened, quotas.expected_limits(ACME, opened)) == []
    for lifted in ({"254:0": disk}, {"254:0": disk, "7:0": "rbps=max wbps=max"}, {"7:0": volume}):
        assert quotas.drifted({**opened, "io": lifted}, quotas.expected_limits(ACME, opened)) == ["io.max"]


def test_quotas_data_is_checked():
    with pytest.raises(DataError, match="quotas_io_devices"):
        quotas.Data.check("n1", {**quotas.DEFAULTS, "quotas_io_devices": ["vda; reboot"]})


@pytest.mark.parametrize("path", ["/var/lib/tos/share", "/srv/tos-volumes/share", "/.tos/a.b:c_d", "/mnt/x-y-z/"])
def test_the_share_unit_is_named_as_systemd_names_it(path):
    import shutil
    import subprocess

    from roles.storage import mount_unit
    if not shutil.which("systemd-escape"):
        pytest.skip("systemd-escape is not installed")
    expected = subprocess.run(["systemd-escape", "--path", "--suffix=mount", path], capture_output=True, text=True,
                              check=True).stdout.strip()
    assert mount_unit(path) == expected
