"""Runs every audit on each host of the chosen pyinfra inventory, and reports failures by control.

Mark an audit with @pytest.mark.groups("nodes", ...) to limit it to those inventory groups
(default: every host), with @pytest.mark.control("ID") to name the control it proves, and with
@pytest.mark.alone if it measures a rate that other audits' load would distort.

With pytest-xdist (`-n 2 --dist loadgroup`, as toskit.cycle runs it) each host's audits run in one
worker, beside the other hosts': when every node has a pair of tenants of its own (two declared
tenants per node), no tenant's volume is wanted on two nodes at once. Otherwise they run one host
after the other.
"""

import fcntl
import tempfile
from contextlib import closing, contextmanager
from fnmatch import fnmatch
from pathlib import Path

import gevent.monkey
import pytest

# pyinfra_cli, whose inventory loader the audits share with the deploy, patches the standard
# library for gevent when it is imported. The audits run no pyinfra operation, and a patched
# pytest-xdist worker can no longer wait for its tests (gevent's LoopExit): stay unpatched.
_patch_all, gevent.monkey.patch_all = gevent.monkey.patch_all, lambda *args, **kwargs: None
import pyinfra_cli  # noqa: E402,F401
gevent.monkey.patch_all = _patch_all

from toskit.tenants import tenants_of
from toskit import audit, audit_report
from toskit.check import DataView, role_defaults
from toskit.inventory import load_inventory


def pytest_configure(config):
    config.addinivalue_line("markers", "groups(*names): inventory groups the audit applies to")
    config.addinivalue_line("markers", "control(id): the control (CIS, dev-sec) the audit proves")
    config.addinivalue_line("markers", "alone: runs while no other audit runs (it measures a rate)")


def _targets(config) -> list:
    """Every host of the inventory (audits look at one host from another, whatever --limit says)."""
    if not hasattr(config, "_tos_targets"):
        config._tos_targets = load_inventory(config.getoption("--inventory"), role_defaults())
    return config._tos_targets


def _audited(config) -> list:
    """The hosts whose audits run: all, or those --limit matches as pyinfra's does (a group name,
    else a host name pattern), each of its comma-separated patterns matching at least one."""
    targets, limit = _targets(config), config.getoption("--limit")
    if not limit:
        return targets

    def matches(pattern: str) -> list:
        in_group = [t for t in targets if pattern in t.groups]
        return in_group or [t for t in targets if fnmatch(t.name, pattern)]

    chosen = {}
    for pattern in (p.strip() for p in limit.split(",") if p.strip()):
        found = matches(pattern)
        if not found:
            raise pytest.UsageError(f"--limit {limit}: {pattern!r} is no group and matches no host of "
                                    f"{config.getoption('--inventory')}")
        chosen.update((t.name, t) for t in found)
    return [t for t in targets if t.name in chosen]


def pytest_generate_tests(metafunc):
    if "target" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("groups")
    groups = set(marker.args) if marker else None
    selected = [t for t in _audited(metafunc.config) if groups is None or groups & set(t.groups)]
    if "tenant" in metafunc.fixturenames:  # a case per declared tenant: one failure hides no other
        cases = [(t, tenant) for t in selected for tenant in tenants_of(t.name, DataView(t.data))]
        metafunc.parametrize("target,tenant", cases, ids=[f"{t.name}-{tenant.id}" for t, tenant in cases])
        return
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
    target = _target_of(item)
    report.user_properties += [("control", _control_of(item)), ("host", target.name if target else None)]


def pytest_runtest_logreport(report):
    """Each audit's result for the report (under xdist, as the workers send them in)."""
    props = dict(report.user_properties)
    status = audit_report.status_of(report.outcome, report.when, hasattr(report, "wasxfail"))
    if status is None or not props.get("host"):
        return
    evidence = report.wasxfail if hasattr(report, "wasxfail") else \
        "\n".join(line for line in report.longreprtext.splitlines() if line.startswith("E "))[:2000]
    _results.append(audit_report.Result(props["host"], props.get("control") or "(no control id)", report.nodeid,
                                        status, evidence))


_results = []


def pytest_terminal_summary(terminalreporter, config):
    if not _results:
        return
    terminalreporter.section("audit report: each control on each host (pass, FAIL, exception, skipped)")
    for line in audit_report.table(_results):
        terminalreporter.write_line(line)
    for result in (r for r in _results if r.status == "FAIL"):
        terminalreporter.write_line(f"FAILED control={result.control} host={result.host} {result.audit}")
    path = config.getoption("--audit-report")
    if path:
        inventory = config.getoption("--inventory")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(audit_report.markdown(_results, f"TOS audit report: {inventory}"))
        terminalreporter.write_line(f"report: {path}")


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


def _target_of(item):
    params = getattr(item, "callspec", None)
    return params.params.get("target") if params else None


def audit_pair(target, targets) -> tuple:
    """The two tenants whose sessions the audits of this node attack and fill: a pair of its own
    when there are tenants enough for every node, else the first two declared."""
    declared = [t.id for t in tenants_of(target.name, DataView(target.data))]
    if len(declared) < 2:
        pytest.fail("isolation audits need two tenants declared for this node")
    nodes = [t.name for t in targets if "nodes" in t.groups]
    if len(declared) >= 2 * len(nodes):
        index = 2 * nodes.index(target.name)
        return tuple(declared[index:index + 2])
    return tuple(declared[:2])


def _hosts_in_parallel(targets) -> bool:
    nodes = [t for t in targets if "nodes" in t.groups]
    pairs = [audit_pair(t, targets) for t in nodes]
    return len({tenant for pair in pairs for tenant in pair}) == 2 * len(nodes)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config, items):
    """All of one host's audits, then the next host's: a tenant's volume opens on one node at a
    time, so the audits' sessions move between nodes once, not once per audit. Under xdist, one
    group per host when the hosts can run side by side, else one group for all."""
    if not config.getoption("--inventory"):
        return
    targets = _targets(config)
    # An audit whose groups have no host here (none in the inventory, or none --limit kept) is not
    # reported as skipped once per audit: it does not apply.
    unaudited = [item for item in items if "target" in item.fixturenames
                 and not any(_target_of(item) is t for t in targets)]
    if unaudited:
        config.hook.pytest_deselected(items=unaudited)
        items[:] = [item for item in items if item not in unaudited]
    order = {t.name: i for i, t in enumerate(targets)}
    # Within a host, its `alone` audits first: they then share one exclusive hold (_alone_when_marked).
    items.sort(key=lambda item: (order.get(_target_of(item).name, -1) if _target_of(item) else -1,
                                 not _is_alone(item)))
    parallel = _hosts_in_parallel(targets)
    for item in items:
        target = _target_of(item)
        item.add_marker(pytest.mark.xdist_group(target.name if parallel and target else "hosts"))


@contextmanager
def _flock(path, mode):
    with open(path, "a") as f:
        fcntl.flock(f, mode)
        yield


def _audit_lock(shared: Path, mode):
    """The run's readers-writer lock, held in `mode` until the returned file is closed. The
    turnstile stops new readers once a writer waits (writer preference)."""
    with _flock(shared / "tos-audit-turnstile.lock", fcntl.LOCK_EX):
        lock = open(shared / "tos-audit-alone.lock", "a")
        fcntl.flock(lock, mode)
    return lock


def _is_alone(item) -> bool:
    return item.get_closest_marker("alone") is not None


_exclusive = []  # this worker's exclusive hold, kept across its consecutive `alone` audits


def _release_exclusive():
    while _exclusive:
        _exclusive.pop().close()


@pytest.fixture(autouse=True)
def _alone_when_marked(request, tmp_path_factory):
    """Under xdist: an `alone` audit waits until no other audit runs, and none starts meanwhile.
    Its sessions (`pair`) start before that, beside the other audits, as any audit's do: only the
    measurements run alone (starting a node's pair, its volumes opened, takes tens of seconds under
    TCG). A host's alone audits run one after the other (collection puts them first) under one
    hold: each hold waits for the other worker's current audit to end, its node idle meanwhile."""
    if not hasattr(request.config, "workerinput"):
        yield
        return
    shared = tmp_path_factory.getbasetemp().parent  # the run's folder, above each worker's
    if not _is_alone(request.node):
        _release_exclusive()
        with closing(_audit_lock(shared, fcntl.LOCK_SH)):
            yield
        return
    if not _exclusive:
        if "pair" in request.fixturenames:
            with closing(_audit_lock(shared, fcntl.LOCK_SH)):
                request.getfixturevalue("pair")
        _exclusive.append(_audit_lock(shared, fcntl.LOCK_EX))
        request.config.add_cleanup(_release_exclusive)
    yield


@pytest.fixture(scope="session")
def _pair_started_on():
    """The node whose pair was last started: audits on it use the pair as it is (each start
    check costs seconds under emulation). A session that died meanwhile fails the audit using it."""
    return set()


@pytest.fixture
def pair(target, targets, host, _started_sessions, _pair_started_on):
    """(A, B): this node's audit pair (audit_pair), each with a running session. Sessions the audit
    started on another node are stopped first (their volumes can be open on one node only)."""
    a, b = audit_pair(target, targets)
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


@pytest.fixture
def vault_ca(target) -> str | None:
    """The PEM of the gateways' CA, read from Vault (None: the site brings its own certificate)."""
    if target.data.get("gateway_own_certificate"):
        return None
    from toskit.vault import VaultSettings
    from toskit.vault_gateway import ca_pem
    settings = VaultSettings.from_data(target.name, DataView(target.data))
    return ca_pem(settings, settings.client(), target.data["gateway_pki_mount"])


@pytest.fixture
def cluster_ca(target) -> str:
    """The PEM of the cluster CA (the hop gateway -> node), read from Vault."""
    from toskit.vault import VaultSettings
    from toskit.vault_pki import ca_pem
    settings = VaultSettings.from_data(target.name, DataView(target.data))
    return ca_pem(settings, settings.client(), target.data["vault_cluster_pki_mount"])
