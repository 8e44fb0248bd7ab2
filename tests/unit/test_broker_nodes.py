"""The broker asks nodes for their reports (toskit/gateway/portal/nodes.py) against real TLS 1.3 servers on
this machine's loopback, each requiring a client certificate as a node's nginx does: a node is reached by
address and checked by name; a silent, mis-named, TLS 1.2 or garbled node is an entry of its own, and
never holds up the others."""

import asyncio
import datetime
import http.server
import json
import socket
import ssl
import threading
import time

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from toskit.gateway.portal.nodes import NodeDoor, reports, tls_context
from toskit.gateway.portal.placement import NodeReport

REPORT = {"node": "node1", "drained": False, "memory": {"total_bytes": 4 << 30, "available_bytes": 2 << 30},
          "sessions": [{"tenant": "acme", "here": None, "volume": "closed", "state": "stopped", "lease": None}]}
NOW = datetime.datetime.now(datetime.timezone.utc)


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(ca_key, ca_cert, cn, usage):
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateBuilder().subject_name(_name(cn)).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(NOW - datetime.timedelta(minutes=5))
               .not_valid_after(NOW + datetime.timedelta(hours=1))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
    builder = builder.issuer_name(ca_cert.subject) if ca_cert else builder.issuer_name(_name(cn))
    return key, builder.sign(ca_key or key, hashes.SHA256())


def _pem(key, *certs) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()) + b"".join(c.public_bytes(serialization.Encoding.PEM)
                                                                       for c in certs)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A cluster CA, node certificates (node1, and one for node9), the gateway's client certificate."""
    folder = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca = (x509.CertificateBuilder().subject_name(_name("TOS cluster CA")).issuer_name(_name("TOS cluster CA"))
          .public_key(ca_key.public_key()).serial_number(1).not_valid_before(NOW - datetime.timedelta(minutes=5))
          .not_valid_after(NOW + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for name, cn, usage in (("node1", "node1", ExtendedKeyUsageOID.SERVER_AUTH),
                            ("node9", "node9", ExtendedKeyUsageOID.SERVER_AUTH),
                            ("gateway", "tos-gateway-gw1", ExtendedKeyUsageOID.CLIENT_AUTH)):
        key, cert = _issue(ca_key, ca, cn, usage)
        (folder / f"{name}.pem").write_bytes(_pem(key, cert))
    return folder


class _Node(http.server.BaseHTTPRequestHandler):
    body = json.dumps(REPORT).encode()

    def do_GET(self):
        self.send_response(200 if self.path == "/v1/report" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


def _serve(pki, cert: str, tls_max=ssl.TLSVersion.TLSv1_3, body: bytes | None = None) -> int:
    """A node's door on 127.0.0.1: TLS, a client certificate of the CA required. Returns its port."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.maximum_version = tls_max
    context.load_cert_chain(pki / f"{cert}.pem")
    context.load_verify_locations(pki / "ca.pem")
    context.verify_mode = ssl.CERT_REQUIRED
    handler = type("Node", (_Node,), {"body": body} if body is not None else {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


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
