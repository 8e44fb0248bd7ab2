"""Audit of what hibernation relies on, on nodes: the runtime at the versions the lab proved,
held against upgrades; criu configured with the restore hook; checkpoints staged in RAM only;
the idle policy's timer as the data says. (That checkpoints restore is proved by the lab tests.)
"""

import re

import pytest

pytestmark = pytest.mark.groups("nodes")

# Written here, not read from the role this audits.
CONTENT_STORE = "/var/lib/containerd/io.containerd.content.v1.content"
CRIU_CONFIG = "/etc/criu/runc.conf"
CRIU_HOOK = "/usr/local/sbin/tos-criu-hook"

VERSION_COMMANDS = {
    "criu": ("criu --version", r"Version: (\S+)"),
    "runc": ("runc --version", r"runc version (\S+?)(?:\+|$|\s)"),
    "containerd": ("containerd --version", r"containerd \S+ (\S+?)(?:~|\+|\s|$)"),
    "docker": ("docker version -f '{{.Server.Version}}'", r"(\S+?)(?:\+|$)"),
}


@pytest.mark.control("tos-hibernation-01")
def test_the_runtime_is_at_the_versions_the_hibernation_tests_passed_with(target, host):
    tested = target.data["hibernation_tested_versions"]
    found = {name: re.search(pattern, host.check_output(command))[1]
             for name, (command, pattern) in VERSION_COMMANDS.items()}
    # A mismatch: run the lab's hibernation tests with the new versions, then update the data.
    assert found == tested


@pytest.mark.control("tos-hibernation-01")
def test_the_runtime_packages_are_held(target, host):
    if not target.data["hibernation_hold_runtime"]:
        pytest.skip("hibernation_hold_runtime is off")
    held = set(host.check_output("apt-mark showhold").split())
    assert set(target.data["hibernation_runtime_packages"]) <= held


@pytest.mark.control("tos-hibernation-02")
def test_criu_runs_the_restore_hook_and_logs_to_a_file(host):
    config = host.file(CRIU_CONFIG).content_string.splitlines()
    assert f"action-script {CRIU_HOOK}" in config
    assert any(line.startswith("log-file /") for line in config)
    # Every line is `option value`: a bare word would become an unknown option and break restores.
    assert all(len(line.split()) == 2 for line in config if line and not line.startswith("#"))
    hook = host.file(CRIU_HOOK)
    assert (hook.user, hook.group, hook.mode) == ("root", "root", 0o755)


@pytest.mark.control("tos-hibernation-03")
def test_checkpoints_pass_through_ram_only(host):
    # containerd's content store (Docker's checkpoint archives) and /tmp (its unpacked restores).
    for path in (CONTENT_STORE, "/tmp"):
        assert host.mount_point(path).filesystem == "tmpfs", path


@pytest.mark.control("tos-hibernation-04")
def test_the_idle_policy_timer_is_as_the_data_says(target, host):
    timer = host.service("tos-session-policy.timer")
    wanted = target.data["hibernation_idle_policy"]
    assert (timer.is_enabled, timer.is_running) == (wanted, wanted)
    assert "ExecStart=/usr/local/sbin/tos-session policy" in \
        host.file("/etc/systemd/system/tos-session-policy.service").content_string
