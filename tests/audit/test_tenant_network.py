"""The tenant network boundary, proven by attack: from tenant A's live session, real connections
to each class of destination a session must never reach. Each is paired with a control: the
same destination reached from the node itself (the probe would have seen success), and A's
refusal carrying the firewall's own signature (EHOSTUNREACH: an admin-prohibited reject) with
its rule's counter moving by at least one packet per attempt. A destination tenant B's egress
allows is reached by B and refused to A.

The expected values are written here, not read from roles/tenant_network.py: an audit that
imported the role's rules would pass with whatever the role forgot.
"""

import json
import re
import urllib.parse
from collections import Counter

import pytest

from tests.audit.sessions import egress_of, inspect, probe, session_ip

pytestmark = pytest.mark.groups("nodes")
TABLE = "inet tos_tenants"
REFUSED = "EHOSTUNREACH"  # what `reject with icmpx admin-prohibited` gives a connect()
# A port nothing on the node listens on, for the audit's own listener (the node-itself control).
CONTROL_PORT = 17022
# (control, class of destination): one audit each; ids name no daemon, so `-k sshd` stays narrow.
CLASSES = [("tos-net-01", "node-at-its-bridge-gateway"), ("tos-net-01", "node-at-its-cluster-address"),
           ("tos-net-02", "vault"), ("tos-net-02", "nfs"), ("tos-net-02", "other-hosts"),
           ("tos-net-02", "package-cache"), ("tos-net-03", "other-tenants-session")]


def rule_counters(host) -> Counter:
    """Packets counted per control id (the first word of each rule's comment), from nft's JSON."""
    ruleset = json.loads(host.check_output(f"nft -j list table {TABLE}"))["nftables"]
    counts = Counter()
    for rule in (item["rule"] for item in ruleset if "rule" in item):
        control = rule.get("comment", "").split(" ", 1)[0]
        counts[control] += sum(e["counter"]["packets"] for e in rule["expr"] if "counter" in e)
    return counts


def reachable_from_node(host, address: str, port: int) -> bool:
    return host.run(f"timeout 5 bash -c 'exec 3<>/dev/tcp/{address}/{port}'").rc == 0


def package_cache(host):
    """(address, port) of the proxy the node's apt uses, if any (the lab's package cache)."""
    proxy = host.run("apt-config dump Acquire::http::Proxy").stdout
    found = re.search(r'"(http://[^"]+)"', proxy)
    return (urllib.parse.urlsplit(found[1]).hostname, urllib.parse.urlsplit(found[1]).port or 80) if found else None


def destinations(target, targets, host, a: str, b: str) -> list:
    """(class, address, port) of every destination A must not reach from its session."""
    gateway = next(iter(inspect(host, a)["NetworkSettings"]["Networks"].values()))["Gateway"]
    found = [("node-at-its-bridge-gateway", gateway, CONTROL_PORT),
             ("node-at-its-cluster-address", target.data["cluster_ip"], 22),
             *node_api(target, "node-at-its-cluster-address"),
             ("other-tenants-session", session_ip(host, b), 7000)]
    vault = urllib.parse.urlsplit(target.data.get("vault_addr") or "")
    if vault.hostname and re.fullmatch(r"[0-9.]+|[0-9a-fA-F:]+", vault.hostname):  # an address, not a name
        found.append(("vault", vault.hostname, vault.port or 443))
    for other in (t for t in targets if t.name != target.name):
        found.append(("other-hosts", other.data["cluster_ip"], 22))
        found += node_api(other, "other-hosts")
        if "storage" in other.groups:
            found.append(("nfs", other.data["cluster_ip"], 2049))
    cache = package_cache(host)
    if cache:
        found.append(("package-cache", *cache))
    return found


def node_api(target, kind: str) -> list:
    """The gateways' door into a node (roles/node_api.py), where it has one: no session may knock."""
    if "nodes" not in target.groups or not target.data["node_api_enabled"]:
        return []
    return [(kind, target.data["cluster_ip"], target.data["node_api_port"])]


@pytest.fixture
def attempts(target, targets, host, pair, request):
    """Every forbidden destination tried from A's session, in one exec per host, with the node's
    own attempt at each (the control) and the firewall's counters before and after."""
    cache = request.config.__dict__.setdefault("_tos_network_attempts", {})
    if target.name not in cache:
        a, b = pair
        pid = host.check_output(
            f"setsid timeout 300 python3 -c \"import socket; s = socket.create_server(('0.0.0.0', {CONTROL_PORT})); "
            f"[c.sendall(b'node') for c, _ in iter(s.accept, None)]\" < /dev/null > /dev/null 2>&1 & "
            "echo $!; sleep 2")
        try:
            found = destinations(target, targets, host, a, b)
            before = rule_counters(host)
            results = probe(host, a, *(["connect", address, str(port)] for _, address, port in found))
            after = rule_counters(host)
            controls = [reachable_from_node(host, address, port) for _, address, port in found]
        finally:
            host.run(f"kill {pid}")
        cache[target.name] = {"cases": [(kind, address, port, result, control) for (kind, address, port), result,
                                        control in zip(found, results, controls)],
                              "moved": after - before}
    return cache[target.name]


@pytest.mark.parametrize("control,kind", [pytest.param(c, k, marks=pytest.mark.control(c), id=k) for c, k in CLASSES])
def test_a_session_reaches_no_part_of_the_infrastructure(attempts, control, kind):
    cases = [case for case in attempts["cases"] if case[0] == kind]
    if not cases:
        pytest.skip(f"no {kind} destination on this site")
    for _, address, port, result, node_reaches in cases:
        assert node_reaches, f"control: the node itself reaches {kind} at {address}:{port}"
        assert result["outcome"] == REFUSED, (kind, address, port, result)


@pytest.mark.parametrize("control", sorted({c for c, _ in CLASSES}))
def test_each_refusal_was_the_firewalls_own(attempts, control):
    """The control's rule counted at least one packet per attempt (not a coincidence elsewhere)."""
    control_of = {kind: c for c, kind in CLASSES}
    tried = Counter(control_of[kind] for kind, *_ in attempts["cases"])[control]
    if not tried:
        pytest.skip(f"no {control} destination on this site")
    assert attempts["moved"][control] >= tried, (control, tried, attempts["moved"])


@pytest.mark.control("tos-net-04")
def test_a_destination_is_reached_only_by_the_tenant_whose_egress_allows_it(target, host, pair):
    a, b = pair
    allowed = [rule for rule in egress_of(target, b) if rule.get("ports") and rule.get("protocol", "tcp") == "tcp"]
    if not allowed or egress_of(target, a):
        pytest.skip("needs tenant B with a TCP egress destination and tenant A with none (the lab's data)")
    address, port = allowed[0]["network"].split("/")[0], allowed[0]["ports"][0]
    before = rule_counters(host)
    [by_b] = probe(host, b, ["connect", address, str(port)])
    [by_a] = probe(host, a, ["connect", address, str(port)])
    moved = rule_counters(host) - before
    assert by_b["outcome"] == "allowed" and by_b["banner"], f"control: B's egress reaches {address}:{port}: {by_b}"
    assert by_a["outcome"] == REFUSED and moved["tos-net-04"] >= 1, (by_a, moved)


@pytest.mark.control("tos-net-05")
def test_the_live_firewall_is_what_was_loaded_and_loads_at_boot(host):
    assert host.service("tos-tenant-firewall.service").is_enabled
    assert host.run(f"nft --stateless list table {TABLE} | cmp -s - /run/tos/tenant-firewall.loaded.table").rc == 0
    assert host.run("sha256sum -c --status /run/tos/tenant-firewall.loaded.sha256").rc == 0
    # Docker does not start without it (fail closed).
    assert "tos-tenant-firewall.service" in host.check_output("systemctl show -p Requires --value docker.service")
    listing = host.check_output(f"nft --stateless list table {TABLE}")
    for chain in ("input", "forward"):
        assert re.search(rf"chain {chain} {{\s*type filter hook {chain} priority filter - 10; policy accept;", listing)


@pytest.mark.control("cis-docker-2.2")
def test_the_tenants_network_keeps_inter_container_traffic_off(host, tenant):
    network = json.loads(host.check_output(f"docker network inspect tos-tenant-{tenant.id}"))[0]
    assert network["Options"].get("com.docker.network.bridge.enable_icc") == "false"
    assert network["Options"].get("com.docker.network.bridge.name", "").startswith("tos")
