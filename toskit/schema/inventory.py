"""The inventory's shape: which groups exist, which hosts are in them, and what names they have.

A misspelt group deploys nothing, a host in two role groups gets both their roles, a duplicate host
name lets the second entry silently win, and a host's inventory name becomes its Vault role's
name: each is refused before any host is contacted.
"""

import re

from .errors import SITE_PREFIX, DataError, SourceError
from .types import HOSTNAME

# pyinfra's implicit groups: every host, and the group named after the inventory file.
IMPLICIT_GROUPS = {"all"}
# Keys that make one thing for the whole cluster (one session image): every host of the group agrees.
CLUSTER_WIDE = {"nodes": ("session_image_suite", "session_image_mirror", "session_image_security_mirror")}


def check_groups(source: str, groups: dict, role_groups: set, optional_groups: set = frozenset()) -> list:
    """Problems in the inventory file as written ({group: [(name, data), ...]}); every role
    group but the optional ones needs a host."""
    errors, where = [], {}
    for group, hosts in groups.items():
        if group not in role_groups | IMPLICIT_GROUPS and not group.startswith(SITE_PREFIX):
            errors.append(SourceError(
                f"{source}: group {group}", f"is not a group of TOS ({', '.join(sorted(role_groups))})",
                f"rename it to one of those, or to {SITE_PREFIX}{group} for a group of your own"))
        for name, data in hosts:
            if not isinstance(name, str) or not re.fullmatch(HOSTNAME, name, re.ASCII):
                errors.append(DataError(name, "the inventory name", name,
                                        "is not a valid hostname (it names the host and its Vault role)",
                                        "name the host like node1 or node1.example.org in the inventory"))
            if not isinstance(data, dict):
                errors.append(DataError(name, "the host's data", data, "is not a mapping",
                                        "write the host as ('node1', {'ssh_hostname': ..., ...})"))
            if group in role_groups:
                if name in where:
                    errors.append(DataError(name, f"group {group}", name,
                                            f"is listed twice (also in {where[name]}); only one entry would count",
                                            "list each host once, in one of the role groups"))
                where[name] = group
    for group in sorted(role_groups - optional_groups):
        if not groups.get(group):
            errors.append(SourceError(f"{source}: group {group}", "has no host",
                                      f"list at least one host: {group} = [('host1', {{...}})]"))
    return errors


def check_hosts_agree(targets: list, role_groups: set) -> list:
    """What must differ between hosts (names, cluster addresses) and what must not (a tenant)."""
    errors, owners, tenants, cluster_wide = [], {}, {}, {}
    for t in targets:
        if not role_groups & set(t.groups):
            continue
        for key in (key for group in t.groups for key in CLUSTER_WIDE.get(group, ())):
            first = cluster_wide.setdefault(key, (t.name, t.data.get(key)))
            if first[1] != t.data.get(key):
                errors.append(DataError(t.name, key, t.data.get(key), f"differs from {first[0]}'s {first[1]!r}: "
                                        "the cluster has one session image", "set it once, in group_data/nodes.py"))
        for key, value in (("hostname", t.data.get("hostname") or t.name), ("cluster_ip", t.data.get("cluster_ip"))):
            if value is not None and (key, value) in owners:
                errors.append(DataError(t.name, key, value, f"is also {owners[key, value]}'s",
                                        f"give every host its own {key}"))
            owners.setdefault((key, value), t.name)
        for entry in t.data.get("tenants") or []:
            if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                first = tenants.setdefault(entry["id"], (t.name, entry))
                if first[1] != entry:
                    errors.append(DataError(t.name, f"tenant {entry['id']}", entry,
                                            f"differs from {first[0]}'s declaration {first[1]!r}: a tenant "
                                            "is one tenant on every node (quotas, enabled, key)",
                                            "declare each tenant once, in group_data/nodes.py"))
    return errors


def check_group_data_files(names: list, groups: set) -> list:
    """A group_data file for a group that does not exist (`node.py`) would apply to no host."""
    return [SourceError(f"group_data/{name}.py", f"names no group ({', '.join(sorted(groups))})",
                        f"rename it after its group, or to {SITE_PREFIX}{name}.py for a group of your own")
            for name in names
            if name not in groups and name not in IMPLICIT_GROUPS and not name.startswith(SITE_PREFIX)]
