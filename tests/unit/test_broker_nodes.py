"""The broker asks nodes for their reports (toskit/gateway/portal/nodes.py) against real TLS 1.3 servers on
this machine's loopback, each requiring a client certificate as a node's nginx does: a node is reached by
address and checked by name; a silent, mis-named, TLS 1.2 or garbled node is an entry of its own, and
never holds up the others."""

import asyncio
import socket
import ssl
import time

import httpx
import pytest
from cluster_doors import REPORT, make_pki, serve as _serve

from toskit.gateway.portal.nodes import NodeDoor, reports, tls_context
from toskit.gateway.portal.placement import NodeReport


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def silent_port():
    """A port that accepts TCP and then says nothing (a node hung before its handshake)."""
    sock = socket.create_server(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


def ask(pki, doors, timeout=2.0):
    return asyncio.run(reports(doors, tls_context(str(pki / "ca.pem"), str(pki / "gateway.pem")), timeout=timeout))


def test_a_node_checked_by_its_name_gives_its_report(pki):
    found = ask(pki, [NodeDoor("node1", "127.0.0.1", _serve(pki, "node1"))])
    assert found == {"node1": NodeReport.model_validate(REPORT)}


@pytest.mark.parametrize("case", ["another name", "TLS 1.2 only", "garbled report"])
def test_a_node_that_fails_is_an_entry_of_its_own_and_the_good_one_still_answers(pki, case):
    good = NodeDoor("node1", "127.0.0.1", _serve(pki, "node1"))
    port = {"another name": lambda: _serve(pki, "node9"),
            "TLS 1.2 only": lambda: _serve(pki, "node1", tls_max=ssl.TLSVersion.TLSv1_2),
            "garbled report": lambda: _serve(pki, "node1", body=b'{"node": "node1"}')}[case]()
    found = ask(pki, [good, NodeDoor("node2", "127.0.0.1", port)])
    assert isinstance(found["node1"], NodeReport)
    assert isinstance(found["node2"], Exception), found["node2"]


def test_silent_nodes_are_passed_over_together_within_the_timeout(pki, silent_port):
    doors = [NodeDoor("node1", "127.0.0.1", _serve(pki, "node1"))] + \
        [NodeDoor(f"node{n}", "127.0.0.1", silent_port) for n in (2, 3, 4)]
    started = time.monotonic()
    found = ask(pki, doors, timeout=1.0)
    elapsed = time.monotonic() - started
    assert isinstance(found["node1"], NodeReport)
    assert all(isinstance(found[f"node{n}"], (TimeoutError, asyncio.TimeoutError, httpx.TimeoutException))
               for n in (2, 3, 4)), found
    assert elapsed < 2.5  # asked at once: not three timeouts one after the other


def test_the_stand_in_door_insists_on_a_client_certificate_as_nginx_does(pki):
    """Else the good case above would prove nothing about the client certificate being sent."""
    port = _serve(pki, "node1")
    context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    with httpx.Client(verify=context, trust_env=False) as client:
        with pytest.raises((httpx.ReadError, httpx.ConnectError, httpx.RemoteProtocolError)):
            client.get(f"https://127.0.0.1:{port}/v1/report", extensions={"sni_hostname": "node1"})
