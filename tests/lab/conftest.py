"""The lab tests' stages. The files run in name order against one lab; `make test-lab` runs them
in three stages (marks: labtools.ON_NODE1, ON_NODE2_AND_GATEWAY, `last`), so that node1's long
tests and node2's run at once, each on one of the machine's two cores (a guest is one emulation
thread):

    1. unmarked: test_1 (lab up, deploy, audit), test_2 (node2 broken and repaired), and the
       session test_5 moves (hibernated on node1 before node2 is rebuilt);
    2. `concurrent`, two workers (pytest-xdist --dist loadgroup): node1's storage and hibernation
       tests (test_3, test_4; group `node1`) beside node2 destroyed, rebuilt, taking the session
       over and rebooted, then the gateway's tests (test_5, test_6, test_7; group `node2+gateway`).
       Neither changes the other's node or tenants (node1: acme, beta; node2: gamma): node2's
       group only has node1 refuse gamma's volume while Vault disables gamma, and redeploys it
       (nothing on node1 changes, only its Vault policy, back to what the data says);
    3. `last`: test_9 (Vault restarted, the lab taken down).

`pytest tests/lab` without -m runs all of it in one process, in name order.
"""


def pytest_configure(config):
    config.addinivalue_line("markers", "concurrent: the lab tests' second stage, two groups side by side")
    config.addinivalue_line("markers", "last: the lab tests' third stage (Vault restarted, lab down)")

