"""The front door's certificate on the lab's gateway: a renewal is served at once by a reloaded
(not restarted) nginx, and a renewal while Vault is unreachable changes nothing. The handshakes
come from this machine, through the gateway's forwarded HTTPS port, as a browser's would.
(The gateway's audits, tos-gateway-01..05 and tos-cert-01..03, ran in test_1's full audit.)"""

import socket
import ssl

import pytest
from labtools import CONFIG, ON_NODE2_AND_GATEWAY, on

from toskit.lab.config import GATEWAY_SERVER_NAME, GUEST_VAULT

GATEWAYS = [h for h in CONFIG.hosts if h.group == "gateways"]
pytestmark = [pytest.mark.skipif(not GATEWAYS, reason="the lab has no gateway (TOS_LAB_GATEWAYS=0)"),
              *ON_NODE2_AND_GATEWAY]


def served_serial(gateway) -> int:
    """The serial of the certificate the gateway serves now (TLS 1.3, the name a browser asks for)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # tos-gateway-01 checks the chain
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    with socket.create_connection(("127.0.0.1", gateway.https_port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=GATEWAY_SERVER_NAME) as tls:
        from cryptography import x509
        return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)).serial_number


def nginx_master(gateway) -> str:
    return on(gateway.name, "systemctl show -p MainPID --value nginx").stdout.strip()


@pytest.mark.parametrize("gateway", GATEWAYS, ids=lambda h: h.name)
def test_a_renewed_certificate_is_served_by_the_same_nginx_at_once(gateway):
    before, master = served_serial(gateway), nginx_master(gateway)
    out = on(gateway.name, "tos-cert renew gateway --force").stdout
    assert out.startswith("gateway: renewed (asked to)"), out
    assert served_serial(gateway) != before  # control: the probe sees the new certificate...
    assert nginx_master(gateway) == master   # ...from the nginx that was running (a reload)


@pytest.mark.parametrize("gateway", GATEWAYS, ids=lambda h: h.name)
def test_a_renewal_without_vault_fails_closed_and_keeps_the_certificate(gateway):
    before = served_serial(gateway)
    pem = on(gateway.name, "sha256sum /etc/tos/tls/gateway.pem").stdout
    on(gateway.name, f"ip route add blackhole {GUEST_VAULT}/32")
    try:
        refused = on(gateway.name, "tos-cert renew gateway --force", check=False, timeout=120)
    finally:
        on(gateway.name, f"ip route del blackhole {GUEST_VAULT}/32")
    assert refused.returncode == 1 and "Vault does not answer" in refused.stderr, refused.stdout + refused.stderr
    assert on(gateway.name, "sha256sum /etc/tos/tls/gateway.pem").stdout == pem
    assert served_serial(gateway) == before
    # No key left behind.
    assert on(gateway.name, "ls -A /etc/tos/tls").stdout.split() == ["gateway.pem"]
