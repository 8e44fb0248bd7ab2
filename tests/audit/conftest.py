"""Runs every audit on each host of the chosen pyinfra inventory, and reports failures by control.

Mark an audit with @pytest.mark.groups("nodes", ...) to limit it to those inventory groups
(default: every host), and with @pytest.mark.control("ID") to name the control it proves.
"""

import tempfile
from pathlib import Path

import pytest

from roles.quotas import tenants_of
from toskit import audit
from toskit.check import DataView, role_defaults
from toskit.inventory import load_inventory


def pytest_configure(config):
    config.addinivalue_line("markers", "groups(*names): inventory groups the audit applies to")
    config.addinivalue_line("markers", "control(id): the control (CIS, dev-sec) the audit proves")


def _targets(config) -> list:
    if not hasattr(config, "_tos_targets"):
        config._tos_targets = load_inventory(config.getoption("--inventory"), role_defaults())
    return config._tos_targets


def pytest_generate_tests(metafunc):
    if "target" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("groups")
    groups = set(marker.args) if marker else None
    selected = [t for t in _targets(metafunc.config) if groups is None or groups & set(t.groups)]
    metafunc.parametrize("target", selected, ids=[t.name for t in selected])


@pytest.fixture(scope="session")
def _ssh_dir(pytestconfig):
    with tempfile.TemporaryDirectory(prefix="tos-audit-") as tmp:
        config = Path(tmp) / "ssh_config"
        config.write_text(audit.ssh_config(_targets(pytestconfig)))
        yield Path(tmp)


_hosts = {}


@pytest.fixture
def host(target, host_named):
    """testinfra host for the target, one ssh master connection per host for the whole run."""
    return host_named(target.name)


def _control_of(item) -> str | None:
    params = getattr(item, "callspec", None)
    if params and "control" in params.params:
        return params.params["control"]
    marker = item.get_closest_marker("control")
    return marker.args[0] if marker else None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    params = getattr(item, "callspec", None)
    target = params.params.get("target") if params else None
    report.user_properties += [("control", _control_of(item)), ("host", target.name if target else None)]


def pytest_terminal_summary(terminalreporter):
    failed = terminalreporter.stats.get("failed", [])
    if not failed:
        return
    terminalreporter.section("audit failures by control and host")
    for report in failed:
        props = dict(report.user_properties)
        terminalreporter.write_line(f"FAILED control={props.get('control') or '-'} "
                                    f"host={props.get('host') or '-'} {report.nodeid}")


@pytest.fixture(scope="session")
def targets(pytestconfig) -> list:
    """Every host of the inventory (for audits that look at one host from another)."""
    return _targets(pytestconfig)


@pytest.fixture
def host_named(targets, _ssh_dir):
    """testinfra host of any inventory host, by name."""
    def connect(name: str):
        if name not in _hosts:
            target = next(t for t in targets if t.name == name)
            _hosts[name] = audit.testinfra_host(target, _ssh_dir / "ssh_config", _ssh_dir)
        return _hosts[name]
    return connect


@pytest.fixture(scope="session")
def _started_sessions(_ssh_dir):
    """Sessions the audits started, stopped once at the end of the run (starting one takes ~10 s).
    Asks for _ssh_dir so that its ssh config outlives this teardown."""
    started = []
    yield started
    for host, tenant in started:
        host.run(f"tos-session stop {tenant}")


def pytest_collection_modifyitems(config, items):
    """All of one host's audits, then the next host's: a tenant's volume opens on one node at a
    time, so the audits' sessions move between nodes once, not once per audit."""
    order = {t.name: i for i, t in enumerate(_targets(config))} if config.getoption("--inventory") else {}

    def host_index(item):
        params = getattr(item, "callspec", None)
        target = params.params.get("target") if params else None
        return order.get(target.name, -1) if target else -1
    items.sort(key=host_index)


@pytest.fixture(scope="session")
def _pair_started_on():
    """The node whose pair was last started: audits on it use the pair as it is (each start
    check costs seconds under emulation). A session that died meanwhile fails the audit using it."""
    return set()


@pytest.fixture
def pair(target, host, _started_sessions, _pair_started_on):
    """(A, B): the first two tenants of this node, each with a running session. Sessions the
    audit started on another node are stopped first (their volumes can be open on one node only)."""
    declared = tenants_of(target.name, DataView(target.data))
    if len(declared) < 2:
        pytest.fail("isolation audits need two tenants declared for this node")
    a, b = declared[0].id, declared[1].id
    if target.name in _pair_started_on:
        return a, b
    for other, tenant in [s for s in _started_sessions if s[0] is not host]:
        other.run(f"tos-session stop {tenant}")
        _started_sessions.remove((other, tenant))
    for tenant in (a, b):
        if host.check_output(f"tos-session start {tenant}").endswith("started"):
            _started_sessions.append((host, tenant))
    _pair_started_on.clear()
    _pair_started_on.add(target.name)
    return a, b
