"""Checks of inventory and group data, run before any operation reaches a host.

Each failure names the host, the key, the value, why it is wrong and how to fix it.
"""

import ipaddress
import re

HOSTNAME = re.compile(r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


class DataError(ValueError):
    def __init__(self, host: str, key: str, value, reason: str, fix: str):
        super().__init__(f"host {host}: {key} = {value!r} {reason}\n  fix: {fix}")
        self.host, self.key, self.value = host, key, value


def _fix(key: str, what: str) -> str:
    return f"set {key} to {what} in group_data/ or in the inventory"


def hostname(host: str, key: str, value) -> None:
    if not isinstance(value, str) or not HOSTNAME.match(value):
        raise DataError(host, key, value, "is not a valid hostname (RFC 1123: a-z, 0-9, '-', dots)",
                        _fix(key, "a name such as node1 or node1.example.org"))


def port(host: str, key: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise DataError(host, key, value, "is not a TCP port", _fix(key, "a whole number from 1 to 65535"))


def positive_int(host: str, key: str, value, maximum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise DataError(host, key, value, f"is not a whole number from 1 to {maximum}",
                        _fix(key, f"a whole number from 1 to {maximum}"))


def choice(host: str, key: str, value, choices: tuple) -> None:
    if value not in choices or isinstance(value, bool) != isinstance(choices[0], bool):
        names = ", ".join(map(str, choices))
        raise DataError(host, key, value, f"is not one of {names}", _fix(key, f"one of {names}"))


def name_list(host: str, key: str, value, pattern: str = r"^[A-Za-z0-9][A-Za-z0-9@._+:-]*$") -> None:
    """A list of plain names (packages, users, algorithms): nothing a shell or config file would parse."""
    if not isinstance(value, (list, tuple)):
        raise DataError(host, key, value, "is not a list", _fix(key, "a list of names, e.g. ['a', 'b']"))
    for item in value:
        if not isinstance(item, str) or not re.match(pattern, item):
            raise DataError(host, key, value, f"contains {item!r}, which is not a plain name",
                            _fix(key, "a list of names made of letters, digits and . _ + : @ -"))


def address_list(host: str, key: str, value) -> None:
    """A list of hostnames or IP addresses."""
    name_list(host, key, value)
    for item in value:
        try:
            ipaddress.ip_address(item)
        except ValueError:
            hostname(host, key, item)


def network_or_none(host: str, key: str, value) -> None:
    if value is None:
        return
    try:
        ipaddress.ip_network(value)
    except (TypeError, ValueError):
        raise DataError(host, key, value, "is not a network in CIDR form",
                        _fix(key, "a network such as 10.0.0.0/24, or None")) from None


def absolute_path(host: str, key: str, value) -> None:
    """An absolute path of plain characters: it lands in unit files, exports and commands."""
    if not isinstance(value, str) or not re.match(r"^(/[A-Za-z0-9._-]+)+$", value):
        raise DataError(host, key, value, "is not an absolute path of letters, digits and . _ -",
                        _fix(key, "a path such as /srv/tos/volumes"))
