from toskit.cycle import audit_results, deploy_results

PYINFRA_OUTPUT = """
--> Starting operation: TOS base | Set the hostname
    [storage] Success
    [node1]   No changes
    [node2]   Error

--> Starting operation: TOS base | Install essential packages
    [storage] No changes
    [node1]   Success
"""


def test_deploy_results_count_changes_and_errors_per_host():
    assert deploy_results(PYINFRA_OUTPUT) == {
        "storage": {"changed": 1, "errors": 0},
        "node1": {"changed": 1, "errors": 0},
        "node2": {"changed": 0, "errors": 1},
    }


def test_a_no_op_deploy_counts_zero_changes_for_every_host():
    output = PYINFRA_OUTPUT.replace("Success", "No changes").replace("Error", "No changes")
    assert {h: r["changed"] for h, r in deploy_results(output).items()} == {"storage": 0, "node1": 0, "node2": 0}


def test_audit_results_from_junit(tmp_path):
    junit = tmp_path / "a.xml"
    junit.write_text('<testsuites><testsuite tests="10" failures="2" errors="1" skipped="1"/></testsuites>')
    assert audit_results(junit) == (6, 3)
    assert audit_results(tmp_path / "missing.xml") == (0, 0)
