"""Settings of running sessions, read back from Docker (CIS Docker Benchmark v1.6.0, section 5).

Whatever started a session container, these must hold for every one labelled as a tenant's.
"""

import json

import pytest

from toskit.check import DataView
from toskit.schema.types import duration_seconds
from toskit.tenants import tenants_of

pytestmark = pytest.mark.groups("nodes")


@pytest.fixture
def sessions(host, pair, request):
    """docker inspect of every tenant session on the node (the audit's own two at least), read
    once per node for all the settings below."""
    cache = request.config.__dict__.setdefault("_tos_sessions", {})
    if host.backend.hostname not in cache:
        ids = host.check_output("docker ps --quiet --filter label=tos.tenant").split()
        cache[host.backend.hostname] = json.loads(host.check_output(f"docker inspect {' '.join(ids)}"))
    return cache[host.backend.hostname]


def each(sessions, check):
    """The sessions for which `check(container)` is false, by name."""
    return [c["Name"] for c in sessions if not check(c)]


HEALTH_PROBE = "/usr/local/bin/tos-session-health"
# [CIS 4.6] The image's health check as Docker records it (ns): the agent's verdict, at most 10 s to
# answer, a minute to start, three failures in a row to call it unhealthy.
EXPECTED_HEALTHCHECK = {"Test": ["CMD", HEALTH_PROBE], "Interval": 30 * 10**9, "Timeout": 10 * 10**9,
                        "StartPeriod": 60 * 10**9, "Retries": 3}

SETTINGS = [
    ("cis-docker-5.1", "AppArmor profile", lambda c: c["AppArmorProfile"] == "docker-default"),
    ("cis-docker-5.3", "all capabilities dropped, none added",
     lambda c: c["HostConfig"]["CapDrop"] == ["ALL"] and not c["HostConfig"]["CapAdd"]),
    ("cis-docker-5.4", "not privileged", lambda c: c["HostConfig"]["Privileged"] is False),
    ("cis-docker-5.9", "own network, not the host's", lambda c: c["HostConfig"]["NetworkMode"] ==
     f"tos-tenant-{c['Config']['Labels']['tos.tenant']}"),
    ("cis-docker-5.10", "memory limited", lambda c: c["HostConfig"]["Memory"] > 0),
    ("cis-docker-5.11", "CPU limited", lambda c: c["HostConfig"]["NanoCpus"] > 0),
    ("cis-docker-5.12", "read-only root filesystem", lambda c: c["HostConfig"]["ReadonlyRootfs"] is True),
    ("cis-docker-5.15", "own PID namespace", lambda c: c["HostConfig"]["PidMode"] == ""),
    ("cis-docker-5.16", "own IPC namespace", lambda c: c["HostConfig"]["IpcMode"] in ("private", "shareable")),
    ("cis-docker-5.17", "no host devices", lambda c: not c["HostConfig"]["Devices"]),
    ("cis-docker-5.20", "own UTS namespace", lambda c: c["HostConfig"]["UTSMode"] == ""),
    ("cis-docker-5.21", "default seccomp profile", lambda c: not any(
        opt.startswith("seccomp") and "unconfined" in opt for opt in c["HostConfig"]["SecurityOpt"] or [])),
    ("cis-docker-5.24", "inside the tenant's slice", lambda c: c["HostConfig"]["CgroupParent"] ==
     f"tos-tenant-{c['Config']['Labels']['tos.tenant']}.slice"),
    ("cis-docker-5.25", "no new privileges", lambda c: "no-new-privileges" in (c["HostConfig"]["SecurityOpt"] or [])),
    ("cis-docker-5.27", "health checked by the agent's own probe", lambda c: c["State"].get("Health") is not None
     and (c["Config"].get("Healthcheck") or {}).get("Test") == ["CMD", HEALTH_PROBE]),
    ("cis-docker-5.28", "PIDs limited", lambda c: (c["HostConfig"]["PidsLimit"] or 0) > 0),
    ("cis-docker-5.30", "host user namespace not shared", lambda c: c["HostConfig"]["UsernsMode"] == ""),
    ("cis-docker-5.31", "no docker socket mounted", lambda c: not any(
        "docker.sock" in (m.get("Source") or "") for m in c["Mounts"])),
    ("tos-session-02", "runs as the session user", lambda c: c["Config"]["User"] == "session"),
]


@pytest.mark.parametrize("control,what,check", SETTINGS, ids=[s[0] for s in SETTINGS])
def test_running_sessions_keep_their_isolation_settings(sessions, control, what, check):
    assert sessions, "no running session to audit"
    assert each(sessions, check) == [], what


@pytest.mark.control("cis-docker-5.5")
def test_sessions_mount_no_host_directory_but_their_own_volume_home(sessions, target):
    """The one bind mount is the tenant's own opened volume, as the session's home; the rest is tmpfs."""
    root = target.data["storage_volume_root"]
    for c in sessions:
        tenant = c["Config"]["Labels"]["tos.tenant"]
        binds = [(m["Source"], m["Destination"]) for m in c["Mounts"] if m["Type"] == "bind"]
        assert binds == [(f"{root}/{tenant}/home", "/home/session")], c["Name"]
        assert all(m["Type"] in ("bind", "tmpfs") for m in c["Mounts"]), c["Name"]


@pytest.mark.control("tos-session-01")
def test_the_session_image_is_the_clusters_one_byte_for_byte(host):
    """Its tag names the sha256 of the tarball the deploy built, and Docker's record of the one
    layer it imported is that sha256: every node whose tag matches holds the same bytes."""
    tag = json.loads(host.file("/etc/tos/tenants.json").content_string)["image"]
    layers = json.loads(host.check_output(f"docker image inspect -f '{{{{json .RootFS.Layers}}}}' {tag}"))
    assert len(layers) == 1 and layers[0].startswith(f"sha256:{tag.split(':')[1]}"), (tag, layers)


@pytest.mark.control("cis-docker-5.27")
def test_sessions_are_probed_at_their_tenants_interval_and_the_agents_last_verdict_is_healthy(sessions, target):
    """Every session at its tenant's health_interval (else session_health_interval), and the agent's
    verdict as the probe last read it healthy (none yet: just started). Not Docker's status word:
    Docker sets it to unhealthy whenever it stops probing (a pause), until the first probe after the resume."""
    site = duration_seconds(target.data["session_health_interval"])
    intervals = {t.id: (t.health_interval or site) * 10**9 for t in tenants_of(target.name, DataView(target.data))}
    assert each(sessions, lambda c: (c["Config"].get("Healthcheck") or {}).get("Interval")
                == intervals.get(c["Config"]["Labels"].get("tos.tenant"))) == []
    assert each(sessions, lambda c: all(r["ExitCode"] == 0 for r in ((c["State"].get("Health") or {}).get("Log") or [])[-1:])) == [], \
        [(c["Name"], (c["State"].get("Health") or {}).get("Log", [])[-1:]) for c in sessions]


@pytest.mark.control("cis-docker-4.6")
def test_the_session_image_carries_its_health_check(host):
    tag = json.loads(host.file("/etc/tos/tenants.json").content_string)["image"]
    check = json.loads(host.check_output(f"docker image inspect -f '{{{{json .Config.Healthcheck}}}}' {tag}"))
    assert check == EXPECTED_HEALTHCHECK, check
