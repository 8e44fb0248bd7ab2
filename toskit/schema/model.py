"""The schema every role's data derives from, and how a refusal becomes a message.

A role declares its keys as a RoleData model (type, default, and a comment saying what the key does);
its DEFAULTS, its deploy-time check and `toskit.check`'s check of a whole host all come from it.
"""

import difflib
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import PydanticCustomError

from .errors import SITE_PREFIX, WHERE, DataError, raise_all
from .renamed import RENAMED_KEYS


class RoleData(BaseModel):
    # strict: '22' is not a port and True is not an address; forbid: a misspelt key is an error;
    # validate_default: a key the data leaves out is read (and checked) as its default.
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, validate_default=True)

    @classmethod
    def defaults(cls) -> dict:
        """What pyinfra's data_defaults get: each key's declared default, as written."""
        return {name: field.get_default(call_default_factory=True) for name, field in cls.model_fields.items()}

    @classmethod
    def check(cls, host: str, data) -> "RoleData":
        """This role's keys of one host's data (pyinfra's host.data or any mapping), validated."""
        get = data.get if hasattr(data, "get") else lambda key: getattr(data, key)
        return validate(cls, host, {key: get(key) for key in cls.model_fields})


def refuse_key(key: str, value, why: str, fix: str):
    """For a model's own checks across its keys: the refusal names `key`."""
    raise PydanticCustomError("tos", why, {"fix": fix, "key": key, "value": value})


GENERIC = {  # pydantic's own error types, said in the words of a sysadmin's data file
    "int_type": ("is not a whole number", "write a whole number, without quotes"),
    "float_type": ("is not a number", "write a number such as 0.5, without quotes"),
    "bool_type": ("is not True or False", "write True or False, without quotes"),
    "string_type": ("is not a string", "write it in quotes"),
    "list_type": ("is not a list", "write a list, e.g. ['a', 'b']"),
    "dict_type": ("is not a mapping", "write a mapping, e.g. {'key': 'value'}"),
    "model_type": ("is not a mapping", "write a mapping, e.g. {'key': 'value'}"),
    "too_short": ("is empty", "give at least one item"),
    "missing": ("is not set", "set it"),
}


def key_of(loc: tuple) -> str:
    key = ""
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    return key


def problems(host: str, error: ValidationError, known_keys=(), nested_keys=()) -> list:
    """One DataError per refusal in a pydantic ValidationError."""
    found = []
    for e in error.errors():
        key, value, kind = key_of(e["loc"]), e.get("input"), e["type"]
        if kind == "tos":
            why, fix = e["msg"], e["ctx"]["fix"]
            if "key" in e["ctx"]:  # a check across keys names the key to change
                key, value = e["ctx"]["key"], e["ctx"]["value"]
        elif kind == "extra_forbidden":
            found.append(unknown_key(host, key, value, known_keys if len(e["loc"]) == 1 else nested_keys))
            continue
        elif kind == "literal_error":
            why, fix = f"is not one of {e['ctx']['expected']}", f"use one of {e['ctx']['expected']}"
        elif kind in GENERIC:
            why, fix = GENERIC[kind]
        else:
            why, fix = e["msg"].lower(), f"see {key}'s comment in roles/"
        if kind == "missing":
            value = None
        found.append(DataError(host, key, value, why, f"{fix}, {WHERE}"))
    return found


def unknown_key(host: str, key: str, value, known_keys) -> DataError:
    parent, _, name = key.rpartition(".")
    if not parent and key in RENAMED_KEYS:  # a key's old name: never read, so never silently ignored
        return DataError(host, key, value, "is a key's old name, no longer read",
                         f"renamed to {RENAMED_KEYS[key]}: rename it in group_data")
    close = difflib.get_close_matches(name.lower(), sorted(known_keys), n=1)
    fix = f"did you mean {close[0]}?" if close else "remove it"
    if parent:  # inside a mapping such as a tenant's quotas
        return DataError(host, key, value, f"is not a key {parent} may have", f"{fix}, {WHERE}")
    return DataError(host, key, value, "is not a key any role reads",
                     f"{fix} (a key of your site's own starts with {SITE_PREFIX}), {WHERE}")


def field_names(model: type) -> set:
    """The names of a model's keys and of every mapping's keys inside it (for 'did you mean')."""
    names, todo = set(), [model]
    while todo:
        current = todo.pop()
        for field in current.model_fields.values():
            names.add(field.alias or "")
            todo += [t for t in _types_in(field.annotation) if isinstance(t, type) and issubclass(t, BaseModel)]
        names |= set(current.model_fields)
    return names - {""}


def _types_in(annotation) -> list:
    found, todo = [], [annotation]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += list(get_args(current))
    return found


def validate(model: type, host: str, values: dict, known_keys=()) -> Any:
    try:
        return model.model_validate(values)
    except ValidationError as error:
        raise_all(problems(host, error, known_keys or model.model_fields, field_names(model)))
