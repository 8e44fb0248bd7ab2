"""The portal behind the front door: reachable only through nginx, sandboxed by systemd, and careful
with what a browser and a log see. Each probe of what must fail is paired with its control."""

import http.client
import secrets
import ssl

import pytest
from front_door import client, endpoint, handshake
from vault_credential import assert_in_ram_for_root_only

pytestmark = pytest.mark.groups("gateways")

# [tos-portal-02] What the portal's unit must hold (templates/gateway/tos-portal.service.j2 sets
# each; a role that forgot one fails here).
SANDBOX = {"DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
           "PrivateTmp": "yes", "PrivateDevices": "yes", "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
           "ProtectKernelLogs": "yes", "ProtectControlGroups": "yes", "RestrictNamespaces": "yes",
           "RestrictSUIDSGID": "yes", "LockPersonality": "yes", "MemoryDenyWriteExecute": "yes",
           "CapabilityBoundingSet": "", "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6"}
# The most systemd-analyze may rate the unit's exposure (0 safest .. 10; "OK" is under 4).
MOST_EXPOSURE = 2.0  # measured on the lab's trixie gateway: 1.2
# [tos-portal-03] What every page's Content-Security-Policy must say.
CSP_MUST = ("default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'",
            "base-uri 'none'", "form-action 'self'")


@pytest.fixture
def portal(target):
    if not target.data.get("portal_enabled", True):
        pytest.skip("portal_enabled is False on this gateway")
    return target.data["portal_port"]


def through_the_front_door(target, vault_ca, path: str):
    """GET `path` from the gateway as a browser does (TLS 1.3, the gateway's name)."""
    address, port = endpoint(target)
    connection = http.client.HTTPSConnection(address, port, timeout=15,
                                             context=client(vault_ca, ssl.TLSVersion.TLSv1_3))
    connection.sock = handshake(target, client(vault_ca, ssl.TLSVersion.TLSv1_3))
    connection.request("GET", path, headers={"Host": target.data["gateway_server_name"]})
    response = connection.getresponse()
    body = response.read().decode(errors="replace")
    connection.close()
    return response, body


@pytest.mark.control("tos-portal-01")
def test_the_portal_listens_on_loopback_only(host, portal):
    listening = host.check_output(f"ss -Hltn 'sport = :{portal}'").splitlines()
    assert listening and all(line.split()[3] == f"127.0.0.1:{portal}" for line in listening), listening
    # Control: on loopback it answers.
    assert host.check_output(f"curl -sS -o /dev/null -w '%{{http_code}}' http://127.0.0.1:{portal}/") == "200"


@pytest.mark.control("tos-portal-01")
def test_the_portal_is_not_reachable_from_the_cluster_network(host, target, portal):
    ip = target.data["cluster_ip"]
    refused = host.run(f"curl -sS -m 5 -o /dev/null http://{ip}:{portal}/")
    assert refused.rc == 7, refused.stderr  # curl's "failed to connect" (nothing listens there)


@pytest.mark.control("tos-portal-02")
@pytest.mark.parametrize("setting,expected", sorted(SANDBOX.items()), ids=sorted(SANDBOX))
def test_the_portal_unit_is_sandboxed(host, portal, setting, expected):
    value = host.check_output(f"systemctl show -p {setting} --value tos-portal.service")
    if setting == "RestrictAddressFamilies":
        assert set(value.split()) == set(expected.split()), value
    else:
        assert value == expected, value


@pytest.mark.control("tos-portal-02")
def test_the_running_portal_has_no_privilege(host, portal):
    pid = host.check_output("systemctl show -p MainPID --value tos-portal.service")
    status = dict(line.split(":\t", 1) for line in host.check_output(f"cat /proc/{pid}/status").splitlines()
                  if ":\t" in line)
    assert status["Uid"].split()[0] != "0" and status["CapEff"] == "0000000000000000"
    assert status["NoNewPrivs"] == "1" and status["Seccomp"] == "2"
    exposure = host.check_output("systemd-analyze security tos-portal.service | tail -1")
    assert float(exposure.split(":")[1].split()[0]) <= MOST_EXPOSURE, exposure


@pytest.mark.control("tos-portal-03")
def test_level0_comes_through_tls_1_3_with_a_strict_content_security_policy(target, vault_ca, portal):
    response, body = through_the_front_door(target, vault_ca, "/")
    assert response.status == 200 and "/auth/login/" in body
    csp = response.getheader("Content-Security-Policy") or ""
    assert all(rule in csp for rule in CSP_MUST), csp
    assert "<script>" not in body and " style=" not in body


@pytest.mark.control("tos-portal-04")
def test_a_callbacks_code_and_state_stay_out_of_the_gateways_logs(host, target, vault_ca, portal):
    """A callback for a real provider, as a provider's error answer carries it: the portal refuses
    it (no sign-in under way) and logs why; the code and state appear in no log."""
    marker = secrets.token_hex(8)
    provider = next(iter(target.data["portal_providers"]))
    path = f"/auth/callback/{provider}"
    through_the_front_door(target, vault_ca, f"{path}?code=c{marker}&state=s{marker}&error=e{marker}")
    journal = host.check_output(f"journalctl -u tos-portal.service --since -5min | grep -- {marker} || true")
    access = host.check_output(f"grep -h -- '{path} ' /var/log/nginx/access.log | tail -3")
    assert f"e{marker}" in journal and f"GET {path} " in access  # control: both saw the request...
    leaked = host.check_output(f"grep -l -- 'c{marker}\\|s{marker}' /var/log/nginx/access.log "
                               f"/var/log/nginx/error.log || true")
    assert leaked == "" and f"c{marker}" not in journal and f"s{marker}" not in journal  # ...not its secrets


@pytest.mark.control("tos-portal-05")
def test_the_portals_vault_credential_is_in_ram_for_root_only(host, portal):
    assert_in_ram_for_root_only(host, "tos-cert vault-check --portal", "/run/tos/portal")
