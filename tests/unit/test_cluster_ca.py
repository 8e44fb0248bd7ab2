"""The cluster CA in a real OpenBao (toskit/vault_pki.py): each node may have its own name signed as a
server, each gateway its own client name, nothing else; and it is not the gateways' browser CA."""

import hvac
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from toskit.vault import NodeAccess, apply, drift, role_id, wrapped_secret_id
from toskit.vault_gateway import GatewayAccess
from toskit.vault_gateway import apply as apply_gateway
from toskit.vault_pki import ca_pem

MOUNT = "tos-cluster-pki"


def node_access(node="node1"):
    return NodeAccess(node, "127.0.0.1/32", ("acme",), ("acme",), "1h")


def gateway_access(gateway="gw1"):
    return GatewayAccess(gateway, "127.0.0.1/32", f"{gateway}.tos.lab", "2h", "1h", "pki")


def logged_in(settings, role: str) -> hvac.Client:
    """The host's own token, got the deploy's way (role_id, wrapped secret_id, AppRole login)."""
    root = settings.client()
    secret_id = root.sys.unwrap(wrapped_secret_id(settings, root, role))["data"]["secret_id"]
    client = hvac.Client(url=settings.addr, verify=settings.ca_file or True)
    client.auth.approle.login(role_id(settings, root, role), secret_id)
    return client


def csr(common_name: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return (x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode())


def sign(client, role, common_name):
    signed = client.secrets.pki.sign_certificate(role, csr(common_name), common_name, mount_point=MOUNT)
    return x509.load_pem_x509_certificate(signed["data"]["certificate"].encode())


def usages(cert):
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


@pytest.fixture
def cluster(settings):
    apply(settings, settings.client(), node_access())
    apply_gateway(settings, settings.client(), gateway_access())
    return settings


def test_applied_once_nothing_is_left_to_do(cluster):
    assert drift(cluster, cluster.client(), node_access()) == []
    assert apply(cluster, cluster.client(), node_access()) == []
    assert apply_gateway(cluster, cluster.client(), gateway_access()) == []


def test_a_node_has_its_own_name_signed_as_a_server_and_nothing_more(cluster):
    node = logged_in(cluster, "tos-node-node1")
    cert = sign(node, "tos-cluster-node-node1", "node1")
    assert usages(cert) == {ExtendedKeyUsageOID.SERVER_AUTH}
    ca = x509.load_pem_x509_certificate(ca_pem(cluster, cluster.client(), MOUNT).encode())
    cert.verify_directly_issued_by(ca)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="not allowed by this role"):
        sign(node, "tos-cluster-node-node1", "node2")  # control above: its own name passed
    for role, name in (("tos-cluster-gateway-gw1", "tos-gateway-gw1"), ("tos-cluster-node-node2", "node2")):
        with pytest.raises(hvac.exceptions.Forbidden):
            sign(node, role, name)


def test_a_gateway_has_only_its_client_name_signed_and_only_for_client_use(cluster):
    gateway = logged_in(cluster, "tos-gateway-gw1")
    cert = sign(gateway, "tos-cluster-gateway-gw1", "tos-gateway-gw1")
    assert usages(cert) == {ExtendedKeyUsageOID.CLIENT_AUTH}
    with pytest.raises(hvac.exceptions.InvalidRequest, match="not allowed by this role"):
        sign(gateway, "tos-cluster-gateway-gw1", "tos-gateway-gw2")
    with pytest.raises(hvac.exceptions.Forbidden):
        sign(gateway, "tos-cluster-node-node1", "node1")


def test_the_cluster_ca_is_not_the_browsers_gateway_ca(cluster):
    from toskit.vault_gateway import ca_pem as gateway_ca_pem
    cluster_ca = ca_pem(cluster, cluster.client(), MOUNT)
    assert cluster_ca and cluster_ca != gateway_ca_pem(cluster, cluster.client(), "pki")
    assert "TOS cluster CA" in x509.load_pem_x509_certificate(cluster_ca.encode()).subject.rfc4514_string()


def test_the_operator_policy_is_enough_for_the_cluster_ca(settings, tmp_path):
    from conftest import as_operator
    operator = as_operator(settings, tmp_path)
    apply(operator, operator.client(), node_access("node7"))
    apply_gateway(operator, operator.client(), gateway_access("gw7"))
    assert drift(settings, settings.client(), node_access("node7")) == []
    with pytest.raises(hvac.exceptions.Forbidden):  # the operator never has a certificate signed
        operator.client().secrets.pki.sign_certificate("tos-cluster-node-node7", csr("node7"), "node7",
                                                       mount_point=MOUNT)


def test_a_nodes_tos_cert_keeps_its_cluster_certificate(cluster, tmp_path, monkeypatch):
    """The node's credential arrives the deploy's way (tos-session vault-enrol), and tos-cert uses it."""
    from test_gateway_certificates import load_tool
    from test_vault_keys import enrolled_node
    enrolled_node(cluster, tmp_path)
    module = load_tool()
    monkeypatch.setattr(module, "CREDENTIALS", tmp_path)
    reloads = []
    monkeypatch.setattr(module, "reload_nginx", lambda: reloads.append(1))
    spec = {"path": str(tmp_path / "tls" / "cluster.pem"), "pki_mount": MOUNT, "pki_role": "tos-cluster-node-node1",
            "name": "node1", "ttl": "72h", "reload": "nginx"}
    conf = {"vault_addr": cluster.addr, "vault_ca_file": cluster.ca_file, "approle_mount": "approle",
            "certificates": {"cluster": spec}}
    assert module.renew(conf, spec).startswith("renewed (no certificate)") and reloads == [1]
    cert = x509.load_pem_x509_certificates((tmp_path / "tls" / "cluster.pem").read_bytes())[0]
    assert usages(cert) == {ExtendedKeyUsageOID.SERVER_AUTH}
    assert module.renew(conf, spec).startswith("valid until") and reloads == [1]  # not due: no reload


def test_before_the_first_deploy_the_cluster_ca_reads_as_none_yet(settings):
    """A deploy plans before its Vault step has made the mount: reading it then is not an error."""
    assert ca_pem(settings, settings.client(), "tos-cluster-pki-not-yet") == ""
