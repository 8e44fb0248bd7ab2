"""The gateways' one door into a node (roles/node_api.py), tried from the hosts that would knock: the
gateway with its cluster client certificate gets the node's report (the control), over TLS 1.3 from a
node certificate naming the node; without a certificate, with the browsers' gateway certificate, with
another node's own certificate, or over TLS 1.2, it gets nothing. (A session knocking: tos-net-01/02.)"""

import json
import shlex

import pytest

pytestmark = pytest.mark.groups("nodes")

# [tos-api-02] What each attempt may present, on the knocking host.
GATEWAY_CLIENT = "/etc/tos/broker/cluster-client.pem"
GATEWAY_BROWSER = "/etc/tos/tls/gateway.pem"
NODE_OWN = "/etc/tos/tls/cluster.pem"
CLUSTER_CA = "/etc/tos/cluster-ca.pem"
# nginx's answers when the handshake went through but no (acceptable) client certificate came.
NO_CERTIFICATE = "No required SSL certificate was sent"
BAD_CERTIFICATE = "The SSL certificate error"


@pytest.fixture
def api(target):
    if not target.data["node_api_enabled"]:
        pytest.skip("node_api_enabled is False here")
    return target.name, target.data["cluster_ip"], target.data["node_api_port"]


@pytest.fixture
def gateway(targets, host_named):
    found = [t for t in targets if "gateways" in t.groups]
    if not found:
        pytest.skip("no gateway in this inventory")
    return host_named(found[0].name)


@pytest.fixture
def other_node(target, targets, host_named):
    found = [t for t in targets if "nodes" in t.groups and t.name != target.name]
    if not found:
        pytest.skip("one node only: no other node's certificate to try")
    return host_named(found[0].name)


def knock(host, api, *options: str, path: str = "/v1/report"):
    """curl from `host` to the node by its name (pinned to its cluster address), checking the node's
    certificate against the cluster CA: (exit code, HTTP status, body)."""
    name, address, port = api
    argv = ["curl", "-sS", "--max-time", "20", "--cacert", CLUSTER_CA, "--resolve", f"{name}:{port}:{address}",
            "-w", "\\n%{http_code}", *options, f"https://{name}:{port}{path}"]
    result = host.run(" ".join(shlex.quote(a) for a in argv))
    body, _, status = result.stdout.rpartition("\n")
    return result.rc, status.strip(), body


@pytest.mark.control("tos-api-01")
def test_a_gateway_with_its_client_certificate_gets_the_report_over_tls_1_3(gateway, api):
    rc, status, body = knock(gateway, api, "--tlsv1.3", "--cert", GATEWAY_CLIENT)
    assert (rc, status) == (0, "200"), body
    assert json.loads(body)["node"] == api[0]  # the node's own report, from a certificate naming it


@pytest.mark.control("tos-api-01")
def test_tls_1_2_is_refused(gateway, api):
    rc, status, body = knock(gateway, api, "--tlsv1.2", "--tls-max", "1.2", "--cert", GATEWAY_CLIENT)
    assert rc == 35 and status == "000", (rc, status, body)  # the handshake itself failed


@pytest.mark.control("tos-api-02")
@pytest.mark.parametrize("presented, answer", [(None, NO_CERTIFICATE), (GATEWAY_BROWSER, BAD_CERTIFICATE)],
                         ids=["no certificate", "the browsers' gateway certificate"])
def test_a_gateway_without_its_cluster_certificate_gets_nothing(gateway, api, presented, answer):
    if presented and gateway.run(f"test -f {presented}").rc != 0:
        pytest.skip(f"{presented} is not on this gateway")
    rc, status, body = knock(gateway, api, *(["--cert", presented] if presented else []))
    assert (rc, status) == (0, "400") and answer in body, (rc, status, body)
    assert '"sessions"' not in body
    assert knock(gateway, api, "--cert", GATEWAY_CLIENT)[1] == "200"  # control: the same knock, right certificate


@pytest.mark.control("tos-api-03")
def test_another_nodes_own_certificate_opens_nothing(other_node, api):
    """A node's certificate is for serving only: presented as a client, nginx refuses it."""
    rc, status, body = knock(other_node, api, "--cert", NODE_OWN)
    assert (rc, status) == (0, "400") and BAD_CERTIFICATE in body, (rc, status, body)
    rc, status, body = knock(other_node, api)  # control: that node reaches the door and would be answered
    assert (rc, status) == (0, "400") and NO_CERTIFICATE in body, (rc, status, body)


@pytest.mark.control("tos-api-04")
def test_the_api_runs_in_the_hosts_mount_namespace(host, api):
    """The volumes its verbs open must be the host's, where dockerd mounts them into sessions: a
    private mount namespace (ProtectSystem, ProtectKernelModules, ...) would hide them."""
    pid = host.check_output("systemctl show -P MainPID tos-node-api")
    assert pid not in ("", "0"), "tos-node-api is not running"
    assert host.check_output(f"readlink /proc/{pid}/ns/mnt") == host.check_output("readlink /proc/1/ns/mnt")
    private = host.check_output("systemd-run --quiet --wait --pipe --collect -p PrivateTmp=yes "
                                "readlink /proc/self/ns/mnt")
    assert private != host.check_output("readlink /proc/1/ns/mnt")  # control: the probe tells namespaces apart
