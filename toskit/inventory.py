"""Reading a pyinfra inventory (with group_data/) the way the deploy does, for the data check and
the audits. A file that does not load is reported by name and line, never as a traceback."""

import runpy
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from pyinfra.api import Config, Inventory, State
from pyinfra.context import ctx_state
from pyinfra_cli.inventory import _is_inventory_group, make_inventory

from toskit.schema.errors import SourceError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
GROUP_DATA = PROJECT_ROOT / "group_data"


@dataclass
class AuditTarget:
    name: str
    groups: list
    data: dict  # role defaults, overridden by group_data and the inventory, as in a deploy

    @property
    def address(self) -> str:
        return self.data.get("ssh_hostname") or self.name

    @property
    def port(self) -> int:
        return int(self.data.get("ssh_port") or 22)


def _failure(error: Exception, default: str) -> SourceError:
    """Where in the site's files loading failed (file:line), and what Python said."""
    place = default
    if isinstance(error, SyntaxError) and error.filename:
        place = f"{error.filename}:{error.lineno}"
    else:
        for frame in traceback.extract_tb(error.__traceback__):
            if not frame.filename.startswith(sys.prefix):
                place = f"{frame.filename}:{frame.lineno}"
    return SourceError(place, f"does not load: {type(error).__name__}: {error}",
                       "correct that line: group_data/ and inventory files are plain Python")


def raw_groups(path: str) -> dict:
    """The inventory file's groups as written: {group: [(host name, host data), ...]}."""
    try:
        attrs = runpy.run_path(path)
    except Exception as error:  # any error in the site's file is reported, not raised
        raise _failure(error, path) from None
    groups = {}
    for key, value in attrs.items():
        if _is_inventory_group(key, value):
            hosts = value[0] if isinstance(value, tuple) else value
            groups[key] = [host if isinstance(host, tuple) else (host, {}) for host in hosts]
    return groups


def load_inventory(path: str, defaults: dict) -> list:
    """Reads a pyinfra inventory file (with group_data/) into audit targets."""
    if not Path(path).exists():
        raise FileNotFoundError(f"inventory {path} does not exist "
                                "(for the lab run `make lab` or `python -m toskit.lab up` first)")
    try:
        with ctx_state.use(State(Inventory(([], {})), Config())):
            inventory = make_inventory(str(path), cwd=str(PROJECT_ROOT))
    except Exception as error:  # a group_data file that does not load
        raise _failure(error, path) from None
    return [AuditTarget(h.name, list(h.groups), {**defaults, **h.data.dict()}) for h in inventory]
