"""The roles. Each module has DEFAULTS (every key documented) and check_data(host, data), which
`toskit.check` runs for every host before a deploy contacts any of them."""

from . import base, hibernation, quotas, runtime, sessions, storage, storage_server, vault

ROLES = [base, runtime, quotas, sessions, storage_server, storage, vault, hibernation]


def packages_of(deploys: list, data) -> list:
    """Every package the given role deploys install (from the host's data, else their defaults).

    pyinfra runs one operation at a time across all hosts: installing them all in base's first apt
    transaction lets the storage host and the nodes install side by side (minutes each under
    emulation), where one role after the other would keep the others waiting. Each role still
    checks its own packages.
    """
    import sys
    wanted = []
    for role_deploy in deploys:
        module = sys.modules[role_deploy.__module__]
        key = getattr(module, "PACKAGES_KEY", None)
        if key:
            value = data.get(key)
            wanted += module.DEFAULTS[key] if value is None else value
    return wanted
