"""The tenant firewall as the role renders it, checked by nft itself and then loaded into a
throwaway network namespace of this machine (never the machine's own ruleset): its grammar, and
what the kernel holds afterwards."""

import json
import shutil
import subprocess

import jinja2
import pytest

from roles import quotas
from roles.tenant_network import forbidden_networks
from toskit.templating import JINJA_OPTIONS, TEMPLATES
from toskit.tenants import parse_tenants

pytestmark = pytest.mark.skipif(shutil.which("nft") is None or shutil.which("unshare") is None,
                                reason="needs nft (Debian's nftables) and unshare")
TENANTS = parse_tenants("node1", [{"id": "acme"}, {"id": "beta", "egress": [
    {"network": "203.0.113.0/24", "ports": [443, 8443]}, {"network": "2001:db8::/32", "protocol": "udp"}]}],
    quotas.DEFAULTS["tenant_quota_defaults"])


# Overlapping on purpose, as a site's data and its hosts' addresses will be: the cluster network
# holds the hosts' /32s, and the site lists a metadata address inside link-local.
SITE_FORBIDDEN = ["10.213.0.0/24", "169.254.169.254/32", "fd00::/8"]
HOSTS = ["10.213.0.10", "10.213.0.11", "fd00::5"]


def rendered(tenants=TENANTS, forbidden=forbidden_networks(SITE_FORBIDDEN, HOSTS)) -> str:
    v4, v6 = forbidden
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, **JINJA_OPTIONS)
    return env.from_string((TEMPLATES / "tenant-firewall.nft.j2").read_text()).render(
        table="tos_tenants", forbidden_v4=v4, forbidden_v6=v6, tenants=tenants,
        egress={t.id: t.egress or () for t in tenants})


def in_namespace(script: str, ruleset: str) -> subprocess.CompletedProcess:
    """Runs script in a fresh network namespace, with the ruleset at /dev/stdin's copy $RULES."""
    return subprocess.run(["unshare", "--net", "sh", "-c", f'RULES=$(mktemp); cat > "$RULES"; {script}'],
                          input=ruleset, capture_output=True, text=True, timeout=60)


def loaded_rules(ruleset: str, times: int = 1) -> list:
    """The rules the kernel holds after loading the ruleset `times` times, as nft's JSON."""
    proc = in_namespace('nft -f "$RULES" && ' * times + "nft -j list table inet tos_tenants", ruleset)
    assert proc.returncode == 0, proc.stderr
    return [item["rule"] for item in json.loads(proc.stdout)["nftables"] if "rule" in item]


def test_nft_accepts_it():
    proc = in_namespace('nft -c -f "$RULES"', rendered())
    assert proc.returncode == 0, proc.stderr


def test_reloading_replaces_the_table_instead_of_adding_to_it():
    def without_handles(rules):
        return [{k: v for k, v in r.items() if k != "handle"} for r in rules]
    assert without_handles(loaded_rules(rendered(), times=2)) == without_handles(loaded_rules(rendered()))


def test_every_bridge_is_refused_the_node_and_what_its_tenant_did_not_allow():
    comments = [r.get("comment", "") for r in loaded_rules(rendered())]
    for control in ("tos-net-01", "tos-net-02", "tos-net-03", "tos-net-04"):
        # docker0, br-* and tos*: a network made by hand is closed too.
        assert sum(c.startswith(control) for c in comments) >= 3, control


def test_only_the_tenant_whose_egress_allows_it_gets_an_accept():
    accepts = [r for r in loaded_rules(rendered()) if "egress" in r.get("comment", "")]
    assert {r["comment"] for r in accepts} == {"tenant beta egress"}
    assert len(accepts) == 2  # one per egress entry: TCP 443/8443 to 203.0.113.0/24, UDP to 2001:db8::/32
    text = json.dumps(accepts)
    assert "203.0.113.0" in text and "2001:db8::" in text and TENANTS[1].bridge in text
    assert TENANTS[0].bridge not in text


def test_egress_comes_after_the_refusals_it_cannot_override():
    comments = [r.get("comment", "") for r in loaded_rules(rendered())]
    first_accept = next(i for i, c in enumerate(comments) if "egress" in c)
    last_forbidden = max(i for i, c in enumerate(comments) if c.startswith(("tos-net-02", "tos-net-03")))
    assert last_forbidden < first_accept < comments.index(next(c for c in comments if c.startswith("tos-net-04")))


def test_each_tenants_network_quotas_are_one_rule_each_way_around_the_refusals():
    """network_out before everything (a session's every packet spends its own quota), network_in
    after every refusal (another tenant's refused traffic cannot spend it)."""
    comments = [r.get("comment", "") for r in loaded_rules(rendered()) if r["chain"] == "forward"]
    refusals = [i for i, c in enumerate(comments) if c.startswith("tos-net-")]
    for tenant in TENANTS:
        out = comments.index(f"tos-quota-08 tenant {tenant.id} network_out")
        into = comments.index(f"tos-quota-08 tenant {tenant.id} network_in")
        assert out < min(refusals) and into > max(refusals), (tenant.id, comments)


def test_overlapping_forbidden_networks_load_as_one_set_each():
    v4, v6 = forbidden_networks(SITE_FORBIDDEN, HOSTS)
    assert "10.213.0.0/24" in v4 and "169.254.0.0/16" in v4 and not any(a.startswith("10.213.0.1") for a in v4)
    assert "fd00::/8" in v6 and "::1/128" in v6
    proc = in_namespace('nft -f "$RULES" && nft -j list set inet tos_tenants forbidden_v4', rendered())
    assert proc.returncode == 0, proc.stderr
    assert "10.213.0.0" in proc.stdout and "169.254.0.0" in proc.stdout


def test_empty_egress_ports_are_refused_not_read_as_every_port():
    from toskit.schema import DataError
    with pytest.raises(DataError, match="ports"):
        parse_tenants("node1", [{"id": "acme", "egress": [{"network": "0.0.0.0/0", "ports": []}]}],
                      quotas.DEFAULTS["tenant_quota_defaults"])
