"""The roles. Each module declares its keys as a schema, `Data` (type, default and a comment for
every key), and DEFAULTS from it; `toskit.check` validates every host against the schemas of its
roles before a deploy contacts any of them."""

import sys

from toskit.defaults import ALL_DEFAULTS

from . import (base, gateway, hibernation, node_api, portal, quotas, runtime, sessions, storage, storage_server,
               tenant_network, vault)

# Which roles run on which inventory group, in order (after base, which every host gets).
ROLES_BY_GROUP = {
    "storage": [
        storage_server.storage_server,  # NFS v4.2 export of the tenants' (encrypted) volume files, to the nodes only
    ],
    "nodes": [
        tenant_network.tenant_firewall,  # nftables: sessions reach their own network and their egress only
        runtime.runtime,   # hardened Docker with user namespaces, auditd watching it
        quotas.quotas,     # one slice (quotas) per tenant
        tenant_network.tenant_networks,  # one bridge network per tenant, inter-container traffic off
        sessions.sessions,  # the session image, built here, and the tos-session tool
        storage.storage,   # the volume share, LUKS tools; volumes open on demand for sessions
        vault.vault,       # tenants' keys and this node's AppRole in Vault; the node enrolled (secret in RAM)
        node_api.node_api,  # the gateways' one door: nginx, TLS 1.3, a gateway's client certificate required
        hibernation.hibernation,  # CRIU checkpoints of idle sessions into their volumes; the idle policy timer
    ],
    "gateways": [
        gateway.gateway,  # nginx, TLS 1.3 only, with a short-lived certificate from Vault's PKI
        portal.portal,    # the Level-0 view and sign-in (OIDC), sandboxed on loopback behind nginx
    ],
}
# Role groups an inventory may leave empty: a cluster (or a lab, TOS_LAB_GATEWAYS=0) without gateways.
OPTIONAL_GROUPS = {"gateways"}


# Every role deploy, each at one fixed position, the same on every host. pyinfra names an operation by
# the line numbers of its call stack, not by its file: without a position of their own, operations of
# two roles on the same line share a name, and hosts whose roles or conditions differ order those
# names differently ("Cycle detected in operation ordering DAG", before any host is changed).
ROLE_DEPLOYS = [role for members in ROLES_BY_GROUP.values() for role in members]
# The role modules (each with its Data schema and DEFAULTS), base first, in the same order.
ROLES = list(dict.fromkeys([base, *(sys.modules[role.__module__] for role in ROLE_DEPLOYS)]))
for _role in ROLES:  # the one table of defaults every role's deploy reads (toskit/defaults.py)
    ALL_DEFAULTS.update(_role.DEFAULTS)


def roles_of(groups) -> list:
    """The role deploys a host in these inventory groups gets, besides base."""
    return [role for group, members in ROLES_BY_GROUP.items() if group in groups for role in members]


def data_models_of(groups) -> tuple:
    """The schemas (RoleData models) of base and of a host's roles in these groups."""
    return tuple(dict.fromkeys([base.Data, *(sys.modules[role.__module__].Data for role in roles_of(groups))]))


def known_keys() -> set:
    """Every key some role (or the inventory itself) reads."""
    from toskit.schema.host import InventoryKeys
    return {key for role in ROLES for key in role.Data.model_fields} | set(InventoryKeys.model_fields)


def host_problems(name: str, groups, data: dict) -> list:
    """Every problem of one host's data, as DataErrors: its roles' keys, and keys no role reads."""
    from toskit.schema.host import check_host
    # By group, not by roles: a host of a group without roles yet (gateways) needs its cluster_ip too.
    in_role_group = bool(set(groups) & set(ROLES_BY_GROUP))
    return check_host(name, data_models_of(groups), data, known_keys(), in_role_group=in_role_group)


def packages_of(deploys: list, data) -> list:
    """Every package the given role deploys install (from the host's data, else their defaults).

    pyinfra runs one operation at a time across all hosts: installing them all in base's first apt
    transaction lets the storage host and the nodes install side by side (minutes each under
    emulation), where one role after the other would keep the others waiting. Each role still
    checks its own packages.
    """
    wanted = []
    for module in dict.fromkeys(sys.modules[role_deploy.__module__] for role_deploy in deploys):
        key = getattr(module, "PACKAGES_KEY", None)
        if key:
            value = data.get(key)
            wanted += ALL_DEFAULTS[key] if value is None else value
    return wanted


def all_packages_of(groups, data) -> list:
    """Every package a host in these groups gets: base's own, then those of its roles."""
    return [*data.base_packages, *data.base_extra_packages, *packages_of(roles_of(groups), data)]
