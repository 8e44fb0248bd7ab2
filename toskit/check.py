"""Validates every host's data for every role, without contacting any host.

    python -m toskit.check inventories/production.py

`make deploy` and `make lab` run it first; each role checks its data again inside the deploy,
so a bare `pyinfra ... deploy.py` still stops before changing anything.
"""

import sys

from roles import ROLES
from toskit.audit import load_inventory
from toskit.validate import DataError


def role_defaults() -> dict:
    defaults = {}
    for role in ROLES:
        defaults.update(role.DEFAULTS)
    return defaults


class DataView:
    """Attribute access to a host's merged data, as pyinfra's host.data gives it to roles."""

    def __init__(self, data: dict):
        self.__dict__.update(data)

    def get(self, key: str, default=None):
        return self.__dict__.get(key, default)


def check_targets(targets: list) -> None:
    """Raises DataError at the first bad value of any of these audit targets (toskit.audit)."""
    for target in targets:
        for role in ROLES:
            role.check_data(target.name, DataView(target.data))


def check_inventory(path: str) -> int:
    """Returns how many hosts were checked; raises DataError at the first bad value."""
    targets = load_inventory(path, role_defaults())
    check_targets(targets)
    return len(targets)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m toskit.check INVENTORY", file=sys.stderr)
        return 2
    try:
        count = check_inventory(argv[0])
    except (DataError, FileNotFoundError) as e:
        print(f"check: {e}", file=sys.stderr)
        return 1
    print(f"check: data of {count} hosts is valid ({argv[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
