"""Audit of the container runtime on nodes, by CIS Docker Benchmark v1.6.0 control.

The running daemon is asked first (`docker info`: what it really enforces); daemon.json only for
settings the daemon does not report.
"""

import json

import pytest

pytestmark = pytest.mark.groups("nodes")

# The baseline's expected values are written here, not read from the role they audit.
DOCKERD = "/usr/sbin/dockerd"
DOCKER_DATA = "/var/lib/docker"
DAEMON_JSON = "/etc/docker/daemon.json"
# (ownership control, mode control, path, owner, group, mode)
FILES = [
    ("3.1", "3.2", "/usr/lib/systemd/system/docker.service", "root", "root", 0o644),
    ("3.3", "3.4", "/usr/lib/systemd/system/docker.socket", "root", "root", 0o644),
    ("3.5", "3.6", "/etc/docker", "root", "root", 0o755),
    ("3.15", "3.16", "/run/docker.sock", "root", "docker", 0o660),
    ("3.17", "3.18", DAEMON_JSON, "root", "root", 0o644),
    ("3.23", "3.24", "/run/containerd/containerd.sock", "root", "root", 0o660),
]
OWNERS = [(f"cis-docker-{c}", path, owner, group) for c, _, path, owner, group, _ in FILES]
MODES = [(f"cis-docker-{c}", path, mode) for _, c, path, _, _, mode in FILES]
# CIS 1.1.x: what auditd must watch for writes and attribute changes (Debian's paths).
WATCHES = [(f"cis-docker-{control}", path) for control, path in [
    ("1.1.3", DOCKERD),
    ("1.1.4", "/run/containerd"),
    ("1.1.5", DOCKER_DATA),
    ("1.1.6", "/etc/docker"),
    ("1.1.7", "/usr/lib/systemd/system/docker.service"),
    ("1.1.8", "/run/containerd/containerd.sock"),
    ("1.1.9", "/usr/lib/systemd/system/docker.socket"),
    ("1.1.10", "/etc/default/docker"),
    ("1.1.11", DAEMON_JSON),
    ("1.1.12", "/etc/containerd/config.toml"),
    ("1.1.14", "/usr/bin/containerd"),
    ("1.1.17", "/usr/bin/containerd-shim-runc-v2"),
    ("1.1.18", "/usr/sbin/runc"),
]]


@pytest.fixture
def docker_info(host):
    return json.loads(host.check_output("docker info --format '{{json .}}'"))


@pytest.fixture
def daemon_json(host):
    return json.loads(host.file(DAEMON_JSON).content_string)


def security_options(info) -> set:
    return {opt.split(",")[0].removeprefix("name=") for opt in info["SecurityOptions"]}


@pytest.mark.control("cis-docker-2.9")
def test_containers_root_is_remapped_to_an_unprivileged_range(target, host, docker_info):
    assert "userns" in security_options(docker_info)
    start = target.data["docker_subid_start"]
    # Docker keeps remapped containers under a root dir named after the range.
    assert docker_info["DockerRootDir"].endswith(f"/{start}.{start}")
    user = target.data["docker_userns_user"]
    for path in ("/etc/subuid", "/etc/subgid"):
        assert f"{user}:{start}:{target.data['docker_subid_count']}" in host.file(path).content_string


@pytest.mark.control("cis-docker-2.2")
def test_no_traffic_between_containers_on_the_default_bridge(host):
    bridge = json.loads(host.check_output("docker network inspect bridge"))[0]
    assert bridge["Options"].get("com.docker.network.bridge.enable_icc") == "false"


@pytest.mark.control("cis-docker-2.14")
def test_containers_cannot_gain_privileges(docker_info):
    assert "no-new-privileges" in security_options(docker_info)


@pytest.mark.control("cis-docker-2.15")
def test_live_restore(docker_info):
    assert docker_info["LiveRestoreEnabled"] is True


@pytest.mark.control("cis-docker-2.16")
def test_no_userland_proxy(host, daemon_json):
    assert daemon_json["userland-proxy"] is False
    assert not host.process.filter(comm="docker-proxy")


@pytest.mark.control("cis-docker-2.17")
def test_default_seccomp_profile(docker_info):
    assert any(opt.startswith("name=seccomp,profile=builtin") for opt in docker_info["SecurityOptions"])


@pytest.mark.control("cis-docker-5.1")
def test_apparmor_confines_containers(host, docker_info):
    assert "apparmor" in security_options(docker_info)
    host.run_expect([0], "aa-status --enabled")


@pytest.mark.control("cis-docker-2.18")
def test_experimental_features_off_unless_a_documented_exception(target, docker_info):
    if target.data["docker_experimental"]:
        assert docker_info["ExperimentalBuild"] is True
        pytest.xfail("documented exception: docker_experimental=True on this host (CRIU checkpoints)")
    assert docker_info["ExperimentalBuild"] is False


@pytest.mark.control("cis-docker-2.7")
def test_daemon_has_no_tcp_socket(host):
    listeners = host.check_output("ss -Hltnp").splitlines()
    assert not [line for line in listeners if '"dockerd"' in line]
    # containerd's CRI stream server listens on the host's loopback only, out of every session's
    # network namespace; anything wider would be a way in.
    wide = [line.split()[3] for line in listeners if '"containerd"' in line]
    assert all(address.startswith("127.0.0.1:") for address in wide), wide


@pytest.mark.control("cis-docker-2.8")
def test_default_open_files_limit(target, daemon_json):
    nofile = daemon_json["default-ulimits"]["nofile"]
    assert (nofile["Soft"], nofile["Hard"]) == (target.data["docker_nofile_soft"], target.data["docker_nofile_hard"])
    assert "nproc" not in daemon_json["default-ulimits"]  # shared by every tenant's remapped root


@pytest.mark.control("cis-docker-2.3")
def test_log_level_info(daemon_json):
    assert daemon_json["log-level"] == "info"


@pytest.mark.control("cis-docker-2.13")
def test_container_logs_are_bounded(target, docker_info, daemon_json):
    assert docker_info["LoggingDriver"] == "local"
    assert daemon_json["log-opts"] == {"max-size": target.data["docker_log_max_size"],
                                       "max-file": str(target.data["docker_log_max_files"])}


@pytest.mark.control("tos-runtime-01")
def test_cgroup_v2_with_systemd_driver(docker_info):
    """Tenants' slices are systemd units: the daemon must place containers through systemd."""
    assert (docker_info["CgroupVersion"], docker_info["CgroupDriver"]) == ("2", "systemd")


@pytest.mark.parametrize("control,path,owner,group", OWNERS, ids=[f[0] for f in OWNERS])
def test_runtime_file_ownership(host, control, path, owner, group):
    f = host.file(path)
    assert f.exists, path
    assert (f.user, f.group) == (owner, group), path


@pytest.mark.parametrize("control,path,mode", MODES, ids=[f[0] for f in MODES])
def test_runtime_file_mode(host, control, path, mode):
    f = host.file(path)
    assert f.exists, path
    assert oct(f.mode) == oct(mode), path


@pytest.fixture
def audit_rules(host):
    return host.check_output("auditctl -l")


@pytest.mark.parametrize("control,path", WATCHES, ids=[w[0] for w in WATCHES])
def test_auditd_watches_the_runtime(audit_rules, control, path):
    assert f"-w {path} -p wa -k docker" in audit_rules.splitlines()


@pytest.mark.control("cis-docker-1.1.5")
def test_dockerd_own_writes_to_its_data_are_audited_as_the_data_says(target, audit_rules):
    rules = audit_rules.splitlines()
    skip = f"-a never,exit -S all -F dir={DOCKER_DATA} -F exe={DOCKERD}"
    assert (skip in rules) != target.data["docker_audit_daemon_writes"]
    if skip in rules:  # ahead of the watch: the first matching rule decides
        assert rules.index(skip) < rules.index(f"-w {DOCKER_DATA} -p wa -k docker")


@pytest.mark.control("tos-runtime-03")
def test_no_one_but_root_may_use_the_docker_socket(host):
    """No authorization plugin (CIS 2.12, a documented exception): only root drives Docker."""
    members = host.check_output("getent group docker").split(":")[3]
    assert members == "", f"members of the docker group (root on this node): {members}"


@pytest.mark.control("tos-runtime-02")
@pytest.mark.parametrize("name", ["docker", "auditd", "containerd"])
def test_runtime_services_run(host, name):
    service = host.service(name)
    assert service.is_running and service.is_enabled, name
