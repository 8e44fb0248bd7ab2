"""Every audit carries a control id on one scheme, as dev-sec's baselines do: the CIS Docker
Benchmark's number (cis-docker-5.3), dev-sec's SSH baseline id (sshd-27), else our own
(tos-<area>-NN). Collected from the audits themselves against a small inventory (no host
contacted); and no audit reads its expected values from the role it audits."""

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCHEME = re.compile(r"cis-docker-\d+(\.\d+)+|sshd-\d\d|tos-[a-z]+-\d\d")
INVENTORY = """
storage = [("storage", {"cluster_ip": "10.9.0.11"})]
nodes = [("node1", {"cluster_ip": "10.9.0.21", "tenants": [{"id": "acme"}, {"id": "beta"}]})]
gateways = [("gateway", {"cluster_ip": "10.9.0.31", "gateway_server_name": "gateway.tos.lab"})]
"""
COLLECT = """
import json, sys
import pytest
from tests.audit.conftest import _control_of, _is_alone

class Controls:
    def pytest_collection_finish(self, session):
        print("CONTROLS " + json.dumps([[item.nodeid, _control_of(item), _is_alone(item)] for item in session.items]))

sys.exit(pytest.main(["-q", "--collect-only", "-p", "no:cacheprovider", "tests/audit",
                      "--inventory=" + sys.argv[1], *sys.argv[2:]], plugins=[Controls()]))
"""


def collect(inventory: Path, *options: str) -> subprocess.CompletedProcess:
    """The audits pytest collects for the small inventory, in their run order (no host contacted)."""
    return subprocess.run([sys.executable, "-c", COLLECT, str(inventory), *options], cwd=ROOT, capture_output=True,
                          text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def collected(proc: subprocess.CompletedProcess) -> list:
    """[nodeid, control, alone] of each audit collected."""
    line = next((l for l in proc.stdout.splitlines() if l.startswith("CONTROLS ")), None)
    assert proc.returncode == 0 and line, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(line.removeprefix("CONTROLS "))


@pytest.fixture(scope="module")
def inventory(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("inventory") / "audit_ids.py"
    path.write_text(INVENTORY)
    return path


@pytest.fixture(scope="module")
def run_order(inventory) -> list:
    return collected(collect(inventory))


@pytest.fixture(scope="module")
def controls(run_order) -> dict:
    return {nodeid: control for nodeid, control, _ in run_order}


def host_of(nodeid: str) -> str | None:
    found = re.search(r"\[([a-z0-9]+)", nodeid)
    return found[1] if found else None


def test_the_audits_were_collected_for_every_host(controls):
    assert len(controls) > 150
    assert any("[node1" in nodeid for nodeid in controls) and any("[storage" in nodeid for nodeid in controls)


@pytest.mark.parametrize("audits,on_gateway", [
    ("test_base.py", True),  # base runs on every host, a gateway too
    ("test_sessions.py", False),
    ("test_runtime.py", False),
    ("test_storage.py", False),
])
def test_a_gateway_gets_the_base_audits_and_none_of_the_other_groups(controls, audits, on_gateway):
    assert any(nodeid.startswith(f"tests/audit/{audits}::") and "[gateway" in nodeid for nodeid in controls) \
        is on_gateway


def test_every_audit_has_a_control_id_on_the_one_scheme(controls):
    assert [nodeid for nodeid, control in controls.items() if not control or not SCHEME.fullmatch(control)] == []


def test_no_audit_reads_its_expected_values_from_a_role():
    for path in (ROOT / "tests" / "audit").glob("*.py"):
        modules = {node.module for node in ast.walk(ast.parse(path.read_text()))
                   if isinstance(node, ast.ImportFrom) and node.module}
        assert not {m for m in modules if m == "roles" or m.startswith("roles.")}, path.name


def test_each_hosts_alone_audits_run_first_one_after_the_other(run_order):
    """So one exclusive hold covers them all (tests/audit/conftest.py): not one wait per audit."""
    node1 = [alone for nodeid, _, alone in run_order if host_of(nodeid) == "node1"]
    assert any(node1) and node1 == sorted(node1, reverse=True)


@pytest.mark.parametrize("limit,hosts", [("node1", {"node1"}), ("nodes", {"node1"}),
                                         ("stor*,gateway", {"storage", "gateway"})])
def test_limit_narrows_the_audit_to_hosts_or_groups_as_pyinfra_does(inventory, limit, hosts):
    assert {host_of(nodeid) for nodeid, _, _ in collected(collect(inventory, f"--limit={limit}"))} == hosts


def test_a_limit_that_matches_no_host_is_refused_by_name(inventory):
    proc = collect(inventory, "--limit=node1,nodd2")
    assert proc.returncode != 0 and "'nodd2' is no group and matches no host" in proc.stdout + proc.stderr
