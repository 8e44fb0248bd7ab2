"""Validates every host's data for every role, and the inventory's shape, without contacting any host.

    python -m toskit.check inventories/production.py

`make deploy` and `make lab` run it first; base checks each host's whole data again when pyinfra
plans the deploy, so a bare `pyinfra ... deploy.py` still stops before changing anything.
Every problem of the run is reported at once.
"""

import sys
from pathlib import Path

from roles import OPTIONAL_GROUPS, ROLES_BY_GROUP, host_problems
from toskit.defaults import ALL_DEFAULTS
from toskit.inventory import GROUP_DATA, PROJECT_ROOT, load_inventory, raw_groups, written_twice
from toskit.schema import DataError
from toskit.schema.errors import raise_all
from toskit.schema.inventory import check_group_data_files, check_groups, check_hosts_agree

LAB_INVENTORY = "lab"  # inventories/lab.py, written by `lab up`: group_data/lab.py is its group's


def role_defaults() -> dict:
    """Every key's default (a copy of the one table the roles' deploys read)."""
    return dict(ALL_DEFAULTS)


class DataView:
    """Attribute access to a host's merged data, as pyinfra's host.data gives it to roles."""

    def __init__(self, data: dict):
        self.__dict__.update(data)

    def get(self, key: str, default=None):
        return self.__dict__.get(key, default)


def problems_of(targets: list) -> list:
    return [error for t in targets for error in host_problems(t.name, t.groups, t.data)]


def check_targets(targets: list) -> None:
    """Raises DataError (every problem at once) for bad data in any of these audit targets."""
    raise_all(problems_of(targets))


def check_inventory(path: str) -> int:
    """Returns how many hosts were checked; raises DataError with every problem found."""
    if not Path(path).exists():
        raise FileNotFoundError(f"inventory {path} does not exist")
    role_groups = set(ROLES_BY_GROUP)
    groups = raw_groups(path)
    # The rest needs a sound inventory.
    raise_all(written_twice(path) + check_groups(path, groups, role_groups, OPTIONAL_GROUPS))
    targets = load_inventory(path, role_defaults())
    known_groups = role_groups | {Path(path).stem, LAB_INVENTORY} | {
        p.stem for p in (PROJECT_ROOT / "inventories").glob("*.py")}
    # pyinfra reads group_data/ here and beside the inventory.
    data_files = {p.stem for folder in (GROUP_DATA, Path(path).resolve().parent / "group_data")
                  for p in folder.glob("*.py")}
    raise_all(check_group_data_files(sorted(data_files), known_groups) + problems_of(targets)
              + check_hosts_agree(targets, role_groups))
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
