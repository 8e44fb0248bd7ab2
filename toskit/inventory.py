"""Reading a pyinfra inventory (with group_data/) the way the deploy does, for the data check and
the audits. A file that does not load is reported by name and line, never as a traceback."""

import ast
import runpy
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from pyinfra.api import Config, Inventory, State
from pyinfra.context import ctx_state
from pyinfra_cli.inventory import make_inventory

from toskit.schema.errors import SourceError, shown

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


def _failure(error: BaseException, default: str) -> SourceError:
    """Where in the site's files loading failed (file:line), and what Python said."""
    filename = getattr(error, "filename", None)  # pyinfra wraps a data file's error with its name
    error = getattr(error, "exception", error)
    place = f"{filename or default}"
    if isinstance(error, SyntaxError) and error.filename:
        place = f"{error.filename}:{error.lineno}"
    else:
        for frame in traceback.extract_tb(getattr(error, "_traceback", None) or error.__traceback__):
            if not frame.filename.startswith((sys.prefix, str(PROJECT_ROOT / "toskit"), "<")):
                place = f"{frame.filename}:{frame.lineno}"
    return SourceError(place, f"does not load: {type(error).__name__}: {error}",
                       "correct that line: group_data/ and inventory files are plain Python")


def _hosts(source: str, group: str, value) -> list:
    """A group's hosts as (name, data) pairs; a malformed entry is a SourceError naming it."""
    hosts = value[0] if isinstance(value, tuple) else value
    if isinstance(value, tuple) and (len(value) != 2 or not isinstance(value[1], dict)):
        raise SourceError(f"{source}: group {group}", "is a tuple but not (hosts, group data)",
                          f"write {group} = [...] or {group} = ([...], {{...}})")
    pairs = []
    for entry in hosts:
        if isinstance(entry, tuple) and len(entry) == 2:
            pairs.append(entry)
        elif isinstance(entry, str):
            pairs.append((entry, {}))
        else:
            raise SourceError(f"{source}: group {group}", f"has the entry {shown(entry)}, not a name or (name, data)",
                              "write each host as 'node1' or ('node1', {...})")
    return pairs


def written_twice(path: str) -> list:
    """Python keeps the last of two assignments to a group, or of two equal keys in a dict: a
    host or a setting written twice would silently lose its first version."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"), filename=path)
    problems, assigned = [], set()
    for node in tree.body:
        for target in getattr(node, "targets", []):
            if isinstance(target, ast.Name) and not target.id.startswith("_"):
                if target.id in assigned:
                    problems.append(SourceError(f"{path}:{node.lineno}", f"assigns {target.id} a second time",
                                                "write each group once (Python keeps only the last)"))
                assigned.add(target.id)
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            keys = [k.value for k in node.keys if isinstance(k, ast.Constant)]
            for key in sorted({k for k in keys if keys.count(k) > 1}, key=repr):
                problems.append(SourceError(f"{path}:{node.lineno}", f"sets {key!r} twice in one mapping",
                                            "keep one (Python keeps only the last)"))
    return problems


def raw_groups(path: str) -> dict:
    """The inventory file's groups as written: {group: [(host name, host data), ...]}."""
    try:
        attrs = runpy.run_path(path)
    except (Exception, SystemExit) as error:  # any error in the site's file is reported, not raised
        raise _failure(error, path) from None
    return {key: _hosts(path, key, value) for key, value in attrs.items()
            if not key.startswith("_") and isinstance(value, (list, tuple))}


def load_inventory(path: str, defaults: dict) -> list:
    """Reads a pyinfra inventory file (with group_data/) into audit targets."""
    if not Path(path).exists():
        raise FileNotFoundError(f"inventory {path} does not exist "
                                "(for the lab run `make lab` or `python -m toskit.lab up` first)")
    try:
        with ctx_state.use(State(Inventory(([], {})), Config())):
            inventory = make_inventory(str(path), cwd=str(PROJECT_ROOT))
    except (Exception, SystemExit) as error:  # a group_data file that does not load
        raise _failure(error, path) from None
    return [AuditTarget(h.name, list(h.groups), {**defaults, **h.data.dict()}) for h in inventory]
