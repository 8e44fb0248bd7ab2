"""Stand-ins for nodes' doors in the broker's unit tests: a cluster CA and its certificates, and TLS
servers on this machine's loopback that require a client certificate of that CA, as a node's nginx
does."""

import datetime
import http.server
import json
import ssl
import threading
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

REPORT = {"node": "node1", "drained": False, "memory": {"total_bytes": 4 << 30, "available_bytes": 2 << 30},
          "sessions": [{"tenant": "acme", "here": None, "volume": "closed", "state": "stopped", "lease": None}]}
NOW = datetime.datetime.now(datetime.timezone.utc)


def common_name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def issue(ca_key, ca_cert, cn, usage):
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateBuilder().subject_name(common_name(cn)).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(NOW - datetime.timedelta(minutes=5))
               .not_valid_after(NOW + datetime.timedelta(hours=1))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
    builder = builder.issuer_name(ca_cert.subject) if ca_cert else builder.issuer_name(common_name(cn))
    return key, builder.sign(ca_key or key, hashes.SHA256())


def key_and_chain(key, *certs) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()) + b"".join(c.public_bytes(serialization.Encoding.PEM)
                                                                       for c in certs)


def make_pki(folder):
    """A cluster CA, node certificates (node1, node2, and one for node9), the gateway's client certificate."""
    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca = (x509.CertificateBuilder().subject_name(common_name("TOS cluster CA")).issuer_name(common_name("TOS cluster CA"))
          .public_key(ca_key.public_key()).serial_number(1).not_valid_before(NOW - datetime.timedelta(minutes=5))
          .not_valid_after(NOW + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for name, cn, usage in (("node1", "node1", ExtendedKeyUsageOID.SERVER_AUTH),
                            ("node2", "node2", ExtendedKeyUsageOID.SERVER_AUTH),
                            ("node9", "node9", ExtendedKeyUsageOID.SERVER_AUTH),
                            ("gateway", "tos-gateway-gw1", ExtendedKeyUsageOID.CLIENT_AUTH)):
        key, cert = issue(ca_key, ca, cn, usage)
        (folder / f"{name}.pem").write_bytes(key_and_chain(key, cert))
    return folder


class NodeState:
    """What a stand-in node reports, changed by the verbs asked of it as tos-session would change it;
    `changes` records each (verb, tenant) asked, `delay` holds each change that long."""

    def __init__(self, report: dict, delay: float = 0.0):
        self.report = json.loads(json.dumps(report))
        self.changes = []
        self.reports = 0  # reports asked
        self.delay = delay
        self.lock = threading.Lock()

    def change(self, verb: str, tenant: str) -> None:
        time.sleep(self.delay)
        with self.lock:
            self.changes.append((verb, tenant))
            session = next(s for s in self.report["sessions"] if s["tenant"] == tenant)
            here = "paused" if verb == "pause" else "running"
            session.update(here=here, volume="open", state=here, lease=self.report["node"])


class StandInNode(http.server.BaseHTTPRequestHandler):
    body = json.dumps(REPORT).encode()
    state: NodeState | None = None  # set: a node that reports and changes its state

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.state is None:
            return self._answer(200 if self.path == "/v1/report" else 404, self.body)
        with self.state.lock:
            self.state.reports += 1
            return self._answer(200, json.dumps(self.state.report).encode())

    def do_POST(self):
        _, version, sessions, tenant, verb = self.path.split("/")
        assert (version, sessions) == ("v1", "sessions") and self.state is not None, self.path
        self.state.change(verb, tenant)
        self._answer(200, json.dumps({"done": f"{verb} {tenant}: done"}).encode())

    def log_message(self, *args):
        pass


def serve(pki, cert: str, tls_max=ssl.TLSVersion.TLSv1_3, body: bytes | None = None,
          state: NodeState | None = None) -> int:
    """A node's door on 127.0.0.1: TLS, a client certificate of the CA required. Returns its port."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.maximum_version = tls_max
    context.load_cert_chain(pki / f"{cert}.pem")
    context.load_verify_locations(pki / "ca.pem")
    context.verify_mode = ssl.CERT_REQUIRED
    handler = type("Node", (StandInNode,), {**({"body": body} if body is not None else {}), "state": state})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


