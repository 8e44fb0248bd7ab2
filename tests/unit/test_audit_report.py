"""The audit report's table and file, from results as the audit conftest collects them."""

from toskit.audit_report import Result, markdown, status_of, table

RESULTS = [
    Result("node1", "cis-docker-2.9", "tests/audit/test_runtime.py::test_remap[node1]", "pass"),
    Result("node2", "cis-docker-2.9", "tests/audit/test_runtime.py::test_remap[node2]", "FAIL", "E   assert 0 == 100000"),
    Result("node1", "cis-docker-2.18", "tests/audit/test_runtime.py::test_exp[node1]", "exception",
           "documented exception: docker_experimental=True on this host (CRIU checkpoints)"),
    Result("node1", "sshd-27", "a", "pass"), Result("node1", "sshd-27", "b", "FAIL", "E   boom"),
    Result("storage", "cis-docker-2.9", "tests/audit/test_runtime.py::test_remap[storage]", "skipped"),
]


def test_a_pytest_report_maps_to_a_status():
    assert status_of("passed", "call", False) == "pass"
    assert status_of("passed", "setup", False) is None  # a passed setup says nothing of the audit
    assert status_of("failed", "setup", False) == "FAIL"  # a fixture that failed fails the audit
    assert status_of("skipped", "call", True) == "exception"
    assert status_of("skipped", "setup", False) == "skipped"


def test_the_table_has_a_row_per_control_and_the_worst_result_per_host():
    lines = table(RESULTS)
    assert lines[0].split() == ["control", "node1", "node2", "storage"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}  # ids have no spaces
    assert rows["cis-docker-2.9"] == ["pass", "FAIL", "skipped"]
    assert rows["cis-docker-2.18"] == ["exception", "-", "-"]
    assert lines[-1].split() == ["sshd-27", "FAIL", "-", "-"]  # one failure among passes fails the cell


def test_the_file_gives_totals_and_the_evidence_of_failures_and_exceptions():
    text = markdown(RESULTS, "TOS audit report: inventories/lab.py")
    assert "2 passed, 2 failed, 1 documented exceptions, 1 not applicable; 3 hosts, 3 controls." in text
    assert "| cis-docker-2.9 | pass | FAIL | skipped |" in text
    assert "### cis-docker-2.9 on node2" in text and "assert 0 == 100000" in text
    assert "### cis-docker-2.18 on node1" in text and "docker_experimental=True" in text
