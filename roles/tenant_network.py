"""tenant_network: each tenant's Docker network, and the node's firewall that keeps sessions off
the infrastructure.

A session reaches its own network and, beyond it, only what its tenant's `egress` allows; never
this node, the cluster's hosts, Vault, the package cache, link-local, loopback or multicast
addresses, nor another tenant, whatever a tenant's data says. The firewall is an nftables table
of its own (inet tos_tenants), loaded by a unit before Docker starts and left alone by Docker's
restarts; it matches every container bridge, so a network made by hand is closed too. The deploy
reloads it when the live table drifts from what was loaded.
"""

import ipaddress
import posixpath

from pyinfra import host, inventory
from pyinfra.api import deploy
from pyinfra.operations import server, systemd

from toskit import operations
from toskit.facts import DockerNetworks, FirewallState
from roles.quotas import tenants_of
from toskit.schema import RoleData
from toskit.schema.net import Network, network_of
from toskit.schema.types import Items, NonEmpty, PackageName
from toskit.templating import TEMPLATES
from toskit.tenants import Egress

FIREWALL_TABLE = "tos_tenants"
FIREWALL_FILE = "/etc/tos/tenant-firewall.nft"
FIREWALL_UNIT = "tos-tenant-firewall.service"
# What the unit loaded, listed without counters: the deploy compares the live table with it.
FIREWALL_LOADED = "/run/tos/tenant-firewall.loaded"
# Never reachable from a session, whatever a tenant allows [TOS-NET-02].
ALWAYS_FORBIDDEN = ("127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "255.255.255.255/32",
                    "::1/128", "fe80::/10", "ff00::/8")


# The data key listing this role's packages (deploy.py installs them all in one transaction).
PACKAGES_KEY = "tenant_network_packages"


class Data(RoleData):  # the tenants themselves: roles/quotas.py
    # nft, which loads the firewall (Docker's iptables-nft does not bring it).
    tenant_network_packages: NonEmpty(PackageName) = ["nftables"]
    # Where sessions may connect beyond their own network, for tenants without an `egress` of
    # their own: [] is nothing. An entry: {"network": "203.0.113.0/24", "ports": [443]} (ports
    # None: all; "protocol": "tcp" (default) or "udp"). "0.0.0.0/0" with ports [443] is the web.
    tenant_egress_default: Items(Egress) = []
    # Networks sessions never reach, on top of every inventory host's cluster_ip and the fixed
    # list above: the cluster network, Vault's and the package mirror's addresses, a cloud's
    # metadata service. Egress rules cannot open them.
    tenant_network_forbidden: Items(Network) = []


DEFAULTS = Data.defaults()


def forbidden_networks(data) -> tuple[list, list]:
    """The networks no session reaches (IPv4, IPv6): the fixed list, the site's, every host's cluster_ip."""
    hosts = [str(network_of(h.data.cluster_ip)) for h in inventory.iter_hosts() if h.data.get("cluster_ip")]
    networks = sorted({ipaddress.ip_network(n) for n in (*ALWAYS_FORBIDDEN, *data.tenant_network_forbidden, *hosts)},
                      key=lambda n: (n.version, n))
    return [str(n) for n in networks if n.version == 4], [str(n) for n in networks if n.version == 6]


@deploy("TOS tenant network", data_defaults=DEFAULTS)
def tenant_network():
    data = Data.check(host.name, host.data)
    tenants = tenants_of(host.name, host.data)
    v4, v6 = forbidden_networks(data)
    rules = operations.template(
        name="Tenant firewall: sessions reach their own network and their egress only [TOS-NET-01..04]",
        src=TEMPLATES / "tenant-firewall.nft.j2", dest=FIREWALL_FILE, mode="600",
        table=FIREWALL_TABLE, forbidden_v4=v4, forbidden_v6=v6, tenants=tenants,
        egress={t.id: t.egress if t.egress is not None else data.tenant_egress_default for t in tenants})
    unit = operations.template(
        name="Tenant firewall unit: loaded at boot, before Docker", src=TEMPLATES / f"{FIREWALL_UNIT}.j2",
        dest=f"/etc/systemd/system/{FIREWALL_UNIT}", table=FIREWALL_TABLE, rules=FIREWALL_FILE,
        loaded=FIREWALL_LOADED, loaded_dir=posixpath.dirname(FIREWALL_LOADED))
    systemd.daemon_reload(name="Load the tenant firewall's unit", _if=unit.did_change)
    systemd.service(name="Tenant firewall at every boot, before Docker", service=FIREWALL_UNIT,
                    running=True, enabled=True)
    # A reload, not a restart: Docker requires the unit, and a restart would take Docker down too.
    drifted = host.get_fact(FirewallState, table=FIREWALL_TABLE, loaded=FIREWALL_LOADED) != "loaded"
    systemd.service(name="Reload the tenant firewall (changed, or drifted from what was loaded)",
                    service=FIREWALL_UNIT, reloaded=True, _if=lambda: drifted or rules.did_change())
    _networks(tenants)


def _networks(tenants) -> None:
    """One bridge network per tenant, named for the firewall, inter-container traffic off [CIS 2.2].
    A network made otherwise is made again, unless a session is attached to it."""
    live = host.get_fact(DockerNetworks, names=tuple(t.network for t in tenants))
    for tenant in host.loop(tenants):
        wanted = {"bridge": tenant.bridge, "icc": "false", "label": tenant.id}
        current = live.get(tenant.network)
        if current is not None and {k: current[k] for k in wanted} == wanted:
            continue
        if current is not None and current["containers"]:
            raise_attached(tenant)
        server.shell(name=f"Network of tenant {tenant.id} (bridge {tenant.bridge}, no inter-container traffic)",
                     commands=[*([f"docker network rm {tenant.network}"] if current is not None else []),
                               f"docker network create --driver bridge --label tos.tenant={tenant.id} "
                               f"--opt com.docker.network.bridge.name={tenant.bridge} "
                               f"--opt com.docker.network.bridge.enable_icc=false {tenant.network}"])


def raise_attached(tenant) -> None:
    from toskit.schema import DataError
    raise DataError(host.name, "tenants", tenant.id,
                    f"tenant {tenant.id}'s network {tenant.network} must be made again (its bridge or "
                    "isolation changed) but a session is attached to it",
                    f"stop it (tos-session stop {tenant.id} on {host.name}, or hibernate it), then deploy again")
