"""The tenant network boundary, proven by attack: from tenant A's live session, real connections
to each class of destination a session must never reach. Each is paired with a control: the
same destination reached from the node itself (the probe would have seen success), and A's
refusal carrying the firewall's own signature (EHOSTUNREACH: an admin-prohibited reject) with
that rule's counter moving. A destination tenant B's egress allows is reached by B, refused to A.

The expected values are written here, not read from roles/tenant_network.py: an audit that
imported the role's rules would pass with whatever the role forgot.
"""

import json
import re
import urllib.parse

import pytest

from tests.audit.sessions import inspect, probe, session_ip

pytestmark = pytest.mark.groups("nodes")
TABLE = "inet tos_tenants"
REFUSED = "EHOSTUNREACH"  # what `reject with icmpx admin-prohibited` gives a connect()
# A port nothing on the node listens on, for the audit's own listener (the node-itself control).
CONTROL_PORT = 17022


def rule_counters(host) -> dict:
    """{comment: packets} summed over the table's rules (nft's JSON)."""
    ruleset = json.loads(host.check_output(f"nft -j list table {TABLE}"))["nftables"]
    counts = {}
    for rule in (item["rule"] for item in ruleset if "rule" in item):
        packets = sum(e["counter"]["packets"] for e in rule["expr"] if "counter" in e)
        counts[rule.get("comment", "")] = counts.get(rule.get("comment", ""), 0) + packets
    return {comment.split()[0]: n for comment, n in counts.items() if comment.startswith("TOS-NET")} | \
        {"all": sum(counts.values())}


def reachable_from_node(host, address: str, port: int) -> bool:
    return host.run(f"timeout 5 bash -c 'exec 3<>/dev/tcp/{address}/{port}'").rc == 0


def destinations(target, targets, host, a: str, b: str) -> list:
    """(control id, what, address, port) of every destination A must not reach from its session."""
    gateway = next(iter(inspect(host, a)["NetworkSettings"]["Networks"].values()))["Gateway"]
    vault = urllib.parse.urlsplit(target.data["vault_addr"])
    others = [t for t in targets if t.name != target.name]
    found = [("TOS-NET-01", "the node, at its bridge's gateway", gateway, CONTROL_PORT),
             ("TOS-NET-01", "the node's sshd, at its cluster address", target.data["cluster_ip"], 22),
             ("TOS-NET-02", "Vault", vault.hostname, vault.port or 443),
             ("TOS-NET-03", "tenant B's session", session_ip(host, b), 7000)]
    found += [("TOS-NET-02", f"{o.name}'s sshd", o.data["cluster_ip"], 22) for o in others]
    found += [("TOS-NET-02", f"{o.name}'s NFS", o.data["cluster_ip"], 2049) for o in others if "storage" in o.groups]
    proxy = target.data.get("session_image_proxy")
    if proxy:  # the lab's package cache
        url = urllib.parse.urlsplit(proxy)
        found.append(("TOS-NET-02", "the package cache", url.hostname, url.port))
    return found


@pytest.fixture
def attempts(target, targets, host, pair, request):
    """Every forbidden destination tried from A's session, in one exec per host, with the node's
    own attempt at each (the control) and the firewall's counters before and after."""
    cache = request.config.__dict__.setdefault("_tos_network_attempts", {})
    if target.name not in cache:
        a, b = pair
        listener = host.run(f"setsid timeout 300 python3 -c \"import socket; s=socket.create_server(('0.0.0.0', "
                            f"{CONTROL_PORT})); [c.sendall(b'node') for c, _ in iter(s.accept, None)]\" "
                            "< /dev/null > /dev/null 2>&1 & sleep 2")
        assert listener.rc == 0
        try:
            found = destinations(target, targets, host, a, b)
            before = rule_counters(host)
            results = probe(host, a, *(["connect", address, str(port)] for _, _, address, port in found))
            after = rule_counters(host)
            controls = [reachable_from_node(host, address, port) for _, _, address, port in found]
        finally:
            host.run(f"pkill -f 'create_server..0.0.0.0., {CONTROL_PORT}'")
        cache[target.name] = {what: (control, address, port, result, controls[i])
                              for i, ((control, what, address, port), result) in enumerate(zip(found, results))}
        cache[target.name]["counters"] = (before, after)
    return cache[target.name]


# (control, the end of the destinations' names): each class of destination, one audit each.
CLASSES = [("TOS-NET-01", "the node, at its bridge's gateway"), ("TOS-NET-01", "the node's sshd, at its cluster address"),
           ("TOS-NET-02", "Vault"), ("TOS-NET-02", "NFS"), ("TOS-NET-02", "sshd"), ("TOS-NET-02", "the package cache"),
           ("TOS-NET-03", "tenant B's session")]


@pytest.mark.parametrize("kind", [pytest.param(kind, marks=pytest.mark.control(control), id=kind)
                                  for control, kind in CLASSES])
def test_a_session_reaches_no_part_of_the_infrastructure(attempts, kind):
    cases = {what: v for what, v in attempts.items() if what != "counters" and what.endswith(kind)}
    if not cases:
        pytest.skip(f"no {kind} on this site")
    for what, (_, address, port, result, node_reaches) in cases.items():
        assert node_reaches, f"control: the node itself reaches {what} ({address}:{port})"
        assert result["outcome"] == REFUSED, (what, address, port, result)


def test_the_refusals_are_the_firewalls_own(attempts):
    before, after = attempts["counters"]
    tried = {control for what, (control, *_) in attempts.items() if what != "counters"}
    for control in tried:
        assert after.get(control, 0) > before.get(control, 0), (control, before, after)


@pytest.mark.control("TOS-NET-04")
def test_a_destination_is_reached_only_by_the_tenant_whose_egress_allows_it(target, host, pair):
    a, b = pair
    allowed = _egress_of(target, b)
    if not allowed or _egress_of(target, a):
        pytest.skip("needs tenant B with an egress destination and tenant A with none (the lab's data)")
    address, port = allowed[0]["network"].split("/")[0], allowed[0]["ports"][0]
    [by_b] = probe(host, b, ["connect", address, str(port)])
    [by_a] = probe(host, a, ["connect", address, str(port)])
    assert by_b["outcome"] == "allowed", f"control: B's egress reaches {address}:{port}: {by_b}"
    assert by_a["outcome"] == REFUSED, by_a


def _egress_of(target, tenant_id: str) -> list:
    entry = next(t for t in target.data["tenants"] if t["id"] == tenant_id)
    return entry.get("egress") or target.data.get("tenant_egress_default") or []


@pytest.mark.control("TOS-NET-05")
def test_the_live_firewall_is_what_was_loaded_and_loads_at_boot(host):
    assert host.service("tos-tenant-firewall.service").is_enabled
    assert host.run(f"nft --stateless list table {TABLE} | cmp -s - /run/tos/tenant-firewall.loaded").rc == 0
    # Docker does not start without it (fail closed).
    requires = host.check_output("systemctl show -p Requires --value docker.service")
    assert "tos-tenant-firewall.service" in requires.split()
    listing = host.check_output(f"nft --stateless list table {TABLE}")
    for chain in ("input", "forward"):
        assert re.search(rf"chain {chain} {{\s*type filter hook {chain} priority filter - 10; policy accept;", listing)


@pytest.mark.control("CIS 2.2")
def test_tenant_networks_keep_inter_container_traffic_off(target, host):
    for entry in target.data["tenants"]:
        network = json.loads(host.check_output(f"docker network inspect tos-tenant-{entry['id']}"))[0]
        assert network["Options"].get("com.docker.network.bridge.enable_icc") == "false", entry["id"]
        assert network["Options"].get("com.docker.network.bridge.name", "").startswith("tos"), entry["id"]
