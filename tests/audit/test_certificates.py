"""Each node's and gateway's certificates from Vault (tos-cert): keys that are root's alone, renewed by a
timer that runs, and the cluster's certificates (the hop gateway -> node, mutual TLS) naming this host,
from the cluster CA, each for its one use: a node's serves, a gateway's is a client."""

import datetime

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from toskit.schema.types import duration_seconds

pytestmark = pytest.mark.groups("nodes", "gateways")

FOLDER = "/etc/tos/tls"
# [tos-cert-02] The cluster certificate each kind of host keeps: its file, its name, its one use.
CLUSTER_CERTIFICATE = {
    "nodes": ("cluster.pem", "{host}", ExtendedKeyUsageOID.SERVER_AUTH),
    "gateways": ("cluster-client.pem", "tos-gateway-{host}", ExtendedKeyUsageOID.CLIENT_AUTH),
}


def kind(target) -> str:
    return next(group for group in CLUSTER_CERTIFICATE if group in target.groups)


@pytest.mark.control("tos-cert-01")
def test_the_keys_are_root_s_alone(host, target):
    folder = host.file(FOLDER)
    assert (folder.user, folder.group, folder.mode) == ("root", "root", 0o700)
    pems = host.check_output(f"find {FOLDER} -maxdepth 1 -type f -name '*.pem'").split()
    assert f"{FOLDER}/{CLUSTER_CERTIFICATE[kind(target)][0]}" in pems  # control: the listing sees them
    for path in pems:
        pem = host.file(path)
        assert (path, pem.user, pem.group, pem.mode) == (path, "root", "root", 0o600)


@pytest.mark.control("tos-cert-02")
def test_the_cluster_certificate_names_this_host_for_its_one_use_from_the_cluster_ca(host, target, cluster_ca):
    filename, name, use = CLUSTER_CERTIFICATE[kind(target)]
    name = name.format(host=target.name)
    cert = x509.load_pem_x509_certificates(host.file(f"{FOLDER}/{filename}").content)[0]
    ca = x509.load_pem_x509_certificate(cluster_ca.encode())
    cert.verify_directly_issued_by(ca)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == name
    assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName) == [name]
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [use]
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime <= datetime.timedelta(seconds=duration_seconds(target.data["vault_cluster_cert_ttl"]) + 60)
    assert cert.not_valid_after_utc > datetime.datetime.now(datetime.timezone.utc)


@pytest.mark.control("tos-cert-03")
def test_the_certificates_are_renewed_by_a_timer_that_runs(host):
    timer = host.service("tos-cert-renew.timer")
    assert timer.is_enabled and timer.is_running
    # Its last run (if any yet) ended well, and no certificate is overdue now.
    assert host.check_output("systemctl show -p Result --value tos-cert-renew.service") == "success"
    status = host.run("tos-cert status")
    assert status.rc == 0 and "valid until" in status.stdout, status.stdout + status.stderr
