"""Each node's and gateway's certificates from Vault (tos-cert): keys that are root's alone (a gateway's
client certificate also its broker's group's, and no one else's), renewed by a timer that runs, and the
cluster's certificates (the hop gateway -> node, mutual TLS) naming this host, from the cluster CA,
each for its one use: a node's serves, a gateway's is a client; nginx reloads that wait until served."""

import datetime

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from toskit.schema.types import duration_seconds

pytestmark = pytest.mark.groups("nodes", "gateways")

FOLDER = "/etc/tos/tls"
BROKER_FOLDER = "/etc/tos/broker"
BROKER_GROUP = "tos-broker"
# [tos-cert-02] The cluster certificate each kind of host keeps: its file, its name, its one use.
CLUSTER_CERTIFICATE = {
    "nodes": (f"{FOLDER}/cluster.pem", "{host}", ExtendedKeyUsageOID.SERVER_AUTH),
    "gateways": (f"{BROKER_FOLDER}/cluster-client.pem", "tos-gateway-{host}", ExtendedKeyUsageOID.CLIENT_AUTH),
}
# [tos-cert-01] Who may read each kind of host's key folders: (folder, group, folder mode, key mode).
KEY_FOLDERS = {
    "nodes": [(FOLDER, "root", 0o700, 0o600)],
    "gateways": [(FOLDER, "root", 0o700, 0o600), (BROKER_FOLDER, BROKER_GROUP, 0o750, 0o640)],
}


def kind(target) -> str:
    return next(group for group in CLUSTER_CERTIFICATE if group in target.groups)


@pytest.mark.control("tos-cert-01")
def test_the_keys_are_root_s_alone_or_the_brokers_too(host, target):
    pems = []
    for path, group, folder_mode, key_mode in KEY_FOLDERS[kind(target)]:
        folder = host.file(path)
        assert (path, folder.user, folder.group, folder.mode) == (path, "root", group, folder_mode)
        found = host.check_output(f"find {path} -maxdepth 1 -type f").split()
        pems += found
        for key in found:
            pem = host.file(key)
            assert (key, pem.user, pem.group, pem.mode) == (key, "root", group, key_mode)
    assert CLUSTER_CERTIFICATE[kind(target)][0] in pems  # control: the listing sees them


@pytest.mark.control("tos-cert-01")
@pytest.mark.groups("gateways")
def test_the_brokers_group_has_no_member_and_only_the_portal_runs_with_it(host):
    """A user put in the group (or a unit given it) could read the gateway's key towards the nodes."""
    assert host.check_output(f"getent group {BROKER_GROUP}").split(":")[3] == ""
    units = host.check_output(f"grep -rlx 'SupplementaryGroups={BROKER_GROUP}' /etc/systemd/system /lib/systemd/system "
                              f"/run/systemd/system || true").split()
    assert units == ["/etc/systemd/system/tos-portal.service"]


@pytest.mark.control("tos-cert-02")
def test_the_cluster_certificate_names_this_host_for_its_one_use_from_the_cluster_ca(host, target, cluster_ca):
    path, name, use = CLUSTER_CERTIFICATE[kind(target)]
    name = name.format(host=target.name)
    cert = x509.load_pem_x509_certificates(host.file(path).content)[0]
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


@pytest.mark.control("tos-cert-04")
def test_a_reload_of_nginx_returns_only_once_the_renewed_certificate_is_served(host):
    """Debian's ExecReload only signals nginx: a renewal (or a deploy) that returned could still be
    answered with the old certificate (a CI run saw it). The drop-in makes the reload wait."""
    reload = host.check_output("systemctl show -p ExecReload --value nginx")
    assert "path=/usr/local/sbin/tos-nginx-reload" in reload and reload.count("path=") == 1, reload
    assert host.file("/usr/local/sbin/tos-nginx-reload").mode == 0o755
