"""tenant_network: the node's firewall that keeps sessions off the infrastructure, and each
tenant's Docker network.

A session reaches its own network and, beyond it, only what its tenant's `egress` allows; never
this node, the cluster's hosts, Vault, the package cache, link-local, loopback or multicast
addresses, nor another tenant, whatever a tenant's data says. The firewall is an nftables table
of its own (inet tos_tenants), loaded by a unit before Docker starts and left alone by Docker's
restarts; it matches every container bridge Docker names (docker0, br-*, and ours, tos*). The
deploy reloads it when its file changes or the live table drifts from what was loaded.

Two deploys: the firewall runs before the runtime role (so a firewall that fails to load at boot,
which keeps Docker down, is repaired before the deploy needs Docker), the networks after it (they
live in the data root of the remapped daemon).
"""

import ipaddress
import posixpath

from pyinfra import host, inventory
from pyinfra.api import OperationError, deploy, operation
from pyinfra.operations import systemd

from toskit import operations
from toskit.defaults import ALL_DEFAULTS
from toskit.facts import DockerNetworks, FirewallState
from toskit.schema import DataError, RoleData
from toskit.schema.net import Network, network_of
from toskit.schema.types import Items, NonEmpty, PackageName
from toskit.templating import TEMPLATES
from toskit.tenants import Egress, tenants_of

FIREWALL_TABLE = "tos_tenants"
FIREWALL_FILE = "/etc/tos/tenant-firewall.nft"
FIREWALL_UNIT = "tos-tenant-firewall.service"
# What the unit loaded: the table listed without counters, and the rules file's sha256. The
# deploy compares both with what is live and on disk.
FIREWALL_LOADED = "/run/tos/tenant-firewall.loaded"
# Never reachable from a session, whatever a tenant allows [tos-net-02].
ALWAYS_FORBIDDEN = ("127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "255.255.255.255/32",
                    "::1/128", "fe80::/10", "ff00::/8")
# The data key listing this role's packages (deploy.py installs them all in one transaction).
PACKAGES_KEY = "tenant_network_packages"


class Data(RoleData):  # the tenants themselves: toskit/tenants.py
    # Where sessions may connect beyond their own network, for tenants without an `egress` of
    # their own: [] is nothing. An entry: {"network": "203.0.113.0/24", "ports": [443]} (ports
    # None: all; "protocol": "tcp" (default) or "udp"). "0.0.0.0/0" with ports [443] is the web.
    tenant_network_egress_default: Items(Egress) = []
    # Networks sessions never reach, on top of every inventory host's cluster_ip and the fixed
    # list above: the cluster network, Vault's and the package mirror's addresses, a cloud's
    # metadata service. Egress rules cannot open them.
    tenant_network_forbidden: Items(Network) = []
    # nft, which loads the firewall (Docker's iptables-nft does not bring it).
    tenant_network_packages: NonEmpty(PackageName) = ["nftables"]


DEFAULTS = Data.defaults()


def forbidden_networks(site: list, host_addresses: list) -> tuple[list, list]:
    """The networks no session reaches, (IPv4, IPv6), each family collapsed (an nftables interval
    set refuses overlapping elements): the fixed list, the site's, every host's cluster_ip."""
    networks = [ipaddress.ip_network(n) for n in (*ALWAYS_FORBIDDEN, *site)]
    networks += [ipaddress.ip_network(network_of(a)) for a in host_addresses]
    return tuple([str(n) for n in ipaddress.collapse_addresses(n for n in networks if n.version == version)]
                 for version in (4, 6))


@deploy("TOS tenant firewall", data_defaults=ALL_DEFAULTS)
def tenant_firewall():
    data = Data.check(host.name, host.data)
    tenants = tenants_of(host.name, host.data)
    v4, v6 = forbidden_networks(data.tenant_network_forbidden,
                                [h.data.cluster_ip for h in inventory if h.data.get("cluster_ip")])
    rules = operations.template(
        name="Tenant firewall: sessions reach their own network and their egress only [tos-net-01..04]",
        src=TEMPLATES / "tenant-firewall.nft.j2", dest=FIREWALL_FILE, mode="600", validate="nft -c -f {path}",
        table=FIREWALL_TABLE, forbidden_v4=v4, forbidden_v6=v6, tenants=tenants,
        egress={t.id: t.egress if t.egress is not None else data.tenant_network_egress_default
                for t in tenants})
    unit = operations.template(
        name="Tenant firewall unit: loaded at boot, before Docker", src=TEMPLATES / f"{FIREWALL_UNIT}.j2",
        dest=f"/etc/systemd/system/{FIREWALL_UNIT}", table=FIREWALL_TABLE, rules=FIREWALL_FILE,
        loaded=FIREWALL_LOADED, loaded_dir=posixpath.dirname(FIREWALL_LOADED))
    systemd.daemon_reload(name="Load the tenant firewall's unit", _if=unit.did_change)
    systemd.service(name="Tenant firewall at every boot, before Docker", service=FIREWALL_UNIT,
                    running=True, enabled=True)
    # A reload, not a restart: Docker requires the unit, and a restart would restart Docker too.
    drifted = host.get_fact(FirewallState, table=FIREWALL_TABLE, rules=FIREWALL_FILE,
                            loaded=FIREWALL_LOADED) != "loaded"
    systemd.service(name="Reload the tenant firewall (changed, or drifted from what was loaded)",
                    service=FIREWALL_UNIT, reloaded=True, _if=lambda: drifted or rules.did_change())


@deploy("TOS tenant networks", data_defaults=ALL_DEFAULTS)
def tenant_networks():
    tenants = tenants_of(host.name, host.data)
    wanted = {t.network: {"bridge": t.bridge, "icc": "false", "label": t.id} for t in tenants}
    # Planning refuses to remake a network a session is attached to (before any host is changed);
    # the operation reads the networks again when it runs, after the runtime role.
    planned = host.get_fact(DockerNetworks, names=tuple(wanted))
    for tenant in tenants:
        current = planned.get(tenant.network)
        if current and current["containers"] and _as_wanted(current) != wanted[tenant.network]:
            raise DataError(host.name, "tenants", tenant.id,
                            f"tenant {tenant.id}'s network {tenant.network} must be made again (its bridge or "
                            "isolation changed) but a session is attached to it",
                            f"stop it (tos-session stop {tenant.id} on {host.name}, or hibernate it), then "
                            "deploy again")
    bridge_networks(name="Tenants' networks: a bridge each, no inter-container traffic [CIS 2.2]", wanted=wanted)


def _as_wanted(current: dict) -> dict:
    return {"bridge": current["bridge"], "icc": current["icc"], "label": current["label"]}


@operation()
def bridge_networks(wanted: dict):
    """Docker bridge networks ({name: {"bridge", "icc", "label"}}) named for the firewall, with
    inter-container traffic off; one made otherwise (an older deploy's) is made again."""
    live = host.get_fact(DockerNetworks, names=tuple(wanted))
    for network, want in wanted.items():
        current = live.get(network)
        if current is not None and _as_wanted(current) == want:
            continue
        if current is not None and current["containers"]:
            raise OperationError(f"network {network} on {host.name} must be made again but a session is attached "
                                 f"to it; stop tenant {want['label']}'s session, then deploy again")
        if current is not None:
            yield f"docker network rm {network}"
        yield (f"docker network create --driver bridge --label tos.tenant={want['label']} "
               f"--opt com.docker.network.bridge.name={want['bridge']} "
               f"--opt com.docker.network.bridge.enable_icc={want['icc']} {network}")
