"""The front door, by real handshakes from the operator's machine (where a browser would be): TLS
1.3 and nothing older, a certificate that chains to Vault's CA, names the gateway and lives no
longer than configured, HSTS."""

import datetime
import http.client
import ssl

import pytest
from cryptography import x509
from front_door import client, endpoint, handshake

from toskit.schema.types import duration_seconds

pytestmark = pytest.mark.groups("gateways")

# [tos-gateway-04] The least HSTS max-age a gateway may send: one year (browsers' preload lists
# ask for it).
LEAST_HSTS_MAX_AGE = 31536000


@pytest.mark.control("tos-gateway-01")
def test_tls_1_3_is_accepted_with_a_certificate_the_vault_ca_vouches_for(target, vault_ca):
    with handshake(target, client(vault_ca, ssl.TLSVersion.TLSv1_3)) as tls:
        assert tls.version() == "TLSv1.3"


@pytest.mark.control("tos-gateway-02")
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1],
                         ids=["1.2", "1.1", "1.0"])
def test_older_tls_is_refused(target, vault_ca, version):
    """tos-gateway-01's client held to an older version, trusting any certificate: only the
    gateway's refusal of the version (its protocol_version alert) counts."""
    if not getattr(ssl, f"HAS_{version.name}"):
        pytest.skip(f"this machine's OpenSSL cannot offer {version.name}")
    context = client(vault_ca, version)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with pytest.raises(ssl.SSLError) as refused:
        handshake(target, context).close()
    assert refused.value.reason in ("TLSV1_ALERT_PROTOCOL_VERSION", "UNSUPPORTED_PROTOCOL"), refused.value


@pytest.mark.control("tos-gateway-03")
def test_the_certificate_names_the_gateway_and_lives_no_longer_than_configured(target, vault_ca):
    with handshake(target, client(vault_ca, ssl.TLSVersion.TLSv1_3)) as tls:
        cert = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert names == [target.data["gateway_server_name"]]
    if vault_ca:  # the site's own certificate lives as long as the site decides
        lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
        assert lifetime <= datetime.timedelta(seconds=duration_seconds(target.data["gateway_cert_ttl"]) + 60)
    assert cert.not_valid_after_utc > datetime.datetime.now(datetime.timezone.utc)


@pytest.mark.control("tos-gateway-04")
def test_hsts_tells_browsers_to_use_https_only(target, vault_ca):
    address, port = endpoint(target)
    connection = http.client.HTTPSConnection(address, port, timeout=10,
                                             context=client(vault_ca, ssl.TLSVersion.TLSv1_3))
    connection.sock = handshake(target, client(vault_ca, ssl.TLSVersion.TLSv1_3))
    connection.request("GET", "/", headers={"Host": target.data["gateway_server_name"]})
    hsts = connection.getresponse().getheader("Strict-Transport-Security") or ""
    connection.close()
    assert hsts.startswith("max-age=") and int(hsts.split("=")[1].split(";")[0]) >= LEAST_HSTS_MAX_AGE, hsts


@pytest.mark.control("tos-gateway-05")
def test_plain_http_only_redirects_to_https(host, target):
    answer = host.check_output("curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' http://127.0.0.1/some/path")
    assert answer == f"301 https://{target.data['gateway_server_name']}/some/path"

# The key's file and the renewal timer: test_certificates.py (tos-cert-01, tos-cert-03), on every host.
