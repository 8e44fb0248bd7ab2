"""The types of the site's data. Each refuses a bad value with why, and how to write it instead.

Every pattern is matched against the whole value (re.fullmatch, ASCII only): a trailing newline,
a shell metacharacter or a non-ASCII digit never passes. Values land in unit files, commands,
exports and Vault policies, so they are held to a shape rather than escaped.
"""

import ipaddress
import re
from fractions import Fraction
from typing import Annotated, Literal, Optional
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, Strict
from pydantic_core import PydanticCustomError

# Literal and Optional are imported from here by the roles' schemas, with the types below.


def refuse(why: str, fix: str):
    # The message is a template: braces in `why` would be read as fields.
    raise PydanticCustomError("tos", why.replace("{", "(").replace("}", ")"), {"fix": fix})


def _matching(pattern: str, why: str, fix: str, max_length: int = 255):
    regex = re.compile(pattern, re.ASCII)

    def check(value: str) -> str:
        if len(value) > max_length or not regex.fullmatch(value):
            refuse(why, fix)
        return value
    return AfterValidator(check)


def _bounded(kind: type, low, high, what: str, example: str):
    def check(value):
        if not low <= value <= high:
            refuse(f"is not {what} from {low} to {high}", f"write {what} from {low} to {high}{example}")
        return value
    return Annotated[kind, Strict(), AfterValidator(check)]


def whole(low: int, high: int):
    """A whole number from low to high (True and '3' are not numbers)."""
    return _bounded(int, low, high, "a whole number", "")


def number(low: float, high: float):
    return _bounded(float, low, high, "a number", ", e.g. 0.5")


Switch = Annotated[bool, Strict()]

HOSTNAME = r"(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*"
Hostname = Annotated[str, Strict(), _matching(
    HOSTNAME, "is not a valid hostname (RFC 1123: a-z, 0-9, '-', dots)",
    "write a name such as node1 or node1.example.org")]

# Names a config file or command takes as one word: packages, algorithms, users, options.
PlainName = Annotated[str, Strict(), _matching(
    r"[A-Za-z0-9][A-Za-z0-9@._+:-]*", "is not a plain name",
    "use letters, digits and . _ + : @ - only (one name per list item)", 128)]
PackageName = Annotated[str, Strict(), _matching(
    r"[a-z0-9][a-z0-9+.-]+", "is not a Debian package name",
    "write the package's name as apt knows it, e.g. 'vim' (one per list item)", 128)]
MountName = Annotated[str, Strict(), _matching(
    r"[a-z0-9][a-z0-9_-]*", "is not a Vault mount name", "use a-z, 0-9, '_' and '-', e.g. 'transit'", 64)]
MountOption = Annotated[str, Strict(), _matching(
    r"[a-z0-9_]+(=[a-z0-9_.]+)?", "is not an NFS mount option", "write options like 'hard' or 'timeo=150'", 64)]
LogSize = Annotated[str, Strict(), _matching(
    r"[1-9][0-9]{0,5}[kmg]", "is not a log file size", "write it like '10m' (k, m or g)")]

# Accounts the deploy creates or changes: never one the system (or a person) already relies on.
SYSTEM_ACCOUNTS = frozenset({
    "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp", "proxy",
    "www-data", "backup", "list", "irc", "gnats", "nobody", "nogroup", "_apt", "messagebus", "sshd",
    "systemd-network", "systemd-resolve", "systemd-timesync", "systemd-journal", "systemd-coredump",
    "polkitd", "statd", "_rpc", "_chrony", "chrony", "tss", "docker", "adm", "sudo", "staff", "users",
    "shadow", "utmp", "tty", "disk", "kmem", "operator",
})


def _own_account(value: str) -> str:
    if value in SYSTEM_ACCOUNTS or value.startswith("systemd-"):
        refuse("is an account the system already uses; the deploy would change its shell and home",
               "pick a name of the toolkit's own, e.g. the default")
    return value


AccountName = Annotated[str, Strict(), _matching(
    r"[a-z_][a-z0-9_-]{0,31}", "is not a user name", "use a-z, 0-9, '_' and '-', starting with a letter"),
    AfterValidator(_own_account)]


def _ip(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        refuse("is not an IP address", "write an address such as 10.0.0.5 or fd00::5")
    if not value.isascii() or value != value.strip():
        refuse("is not an IP address", "write an address such as 10.0.0.5 or fd00::5")
    return value


IPAddress = Annotated[str, Strict(), AfterValidator(_ip)]


def _address(value: str) -> str:
    try:
        return _ip(value)
    except PydanticCustomError:
        if not re.fullmatch(HOSTNAME, value, re.ASCII) or value.replace(".", "").isdigit():
            refuse("is not an IP address or a hostname", "write an address such as 10.0.0.5, or a name such as "
                   "ntp.example.org")
        return value


Address = Annotated[str, Strict(), AfterValidator(_address)]


def _network(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as e:
        refuse(f"is not a network in CIDR form ({e})", "write a network such as 10.0.0.0/24 (no host bits set)")
    if "/" not in value or not value.isascii():
        refuse("is not a network in CIDR form", "write a network such as 10.0.0.0/24 or 10.0.0.5/32")
    return value


Network = Annotated[str, Strict(), AfterValidator(_network)]


def _https_url(value: str) -> str:
    fix = "write it like https://vault.example.org:8200 (https, a host, an optional port, nothing else)"
    if not value.isascii() or not value.isprintable() or " " in value:  # urlsplit drops some silently
        refuse("is not a URL (it has spaces or control characters)", fix)
    try:
        url = urlsplit(value)
        port = url.port
    except ValueError:
        refuse("is not a URL", fix)
    if url.scheme != "https":
        refuse("is not an https:// address: the nodes would send their Vault credentials in the clear", fix)
    if url.username or url.password or url.query or url.fragment or url.path not in ("", "/") or port == 0:
        refuse("has more than a scheme, host and port", fix)
    _address(url.hostname or "")
    return value


HttpsUrl = Annotated[str, Strict(), AfterValidator(_https_url)]


def _path(prefix: str, example: str):
    def check(value: str) -> str:
        parts = value.split("/")[1:]
        if not value.startswith(prefix) or any(p in ("", ".", "..") for p in parts) or len(value) > 255 \
                or not all(re.fullmatch(r"[A-Za-z0-9._-]+", p, re.ASCII) for p in parts):
            refuse(f"is not an absolute path under {prefix} of letters, digits and . _ - (no '..')",
                   f"write a path such as {example}")
        return value
    return Annotated[str, Strict(), AfterValidator(check)]


AbsolutePath = _path("/", "/srv/tos/volumes")
DevicePath = _path("/dev/", "/dev/vda")

UNITS = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
SIZE = re.compile(r"(?P<number>[0-9]{1,15}(?:\.[0-9]{1,6})?)(?P<unit>[KMGT])", re.ASCII)
MAX_SIZE = 2**64 - 1
DURATION = re.compile(r"(?P<number>[0-9]{1,9})(?P<unit>[smh])", re.ASCII)
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600}


def size_bytes(value: str, minimum: int = 1, multiple: int = 1) -> int:
    """'512M' -> bytes. The unit is required: K, M, G or T (powers of 1024)."""
    match = SIZE.fullmatch(value) if isinstance(value, str) else None
    if not match:
        refuse("is not a size with a unit", "write it like '512M' or '2G' (K, M, G, T: powers of 1024)")
    exact = Fraction(match["number"]) * UNITS[match["unit"]]
    if exact.denominator != 1:
        refuse("is not a whole number of bytes", "write it in a smaller unit, e.g. '1536M' for '1.5G'")
    size = int(exact)
    if size > MAX_SIZE:
        refuse("is larger than 2^64 bytes", "write a realistic size, e.g. '2T'")
    if size < minimum:
        refuse(f"is below the minimum of {_human(minimum)}", f"write at least {_human(minimum)}")
    if size % multiple:
        refuse(f"is not a multiple of {_human(multiple)}", f"round it to a multiple of {_human(multiple)}")
    return size


def _human(size: int) -> str:
    for unit in "TGMK":
        if size % UNITS[unit] == 0:
            return f"{size // UNITS[unit]}{unit}"
    return f"{size} bytes"


def Size(minimum: int = 1, multiple: int = 1):
    """A size such as '512M'; the model holds it in bytes."""
    return Annotated[int, BeforeValidator(lambda v: size_bytes(v, minimum, multiple))]


def duration_seconds(value: str, maximum: int = 366 * 86400) -> int:
    """'30m' -> 1800. The unit is required: s, m or h; zero is refused, never taken as 'the default'."""
    match = DURATION.fullmatch(value) if isinstance(value, str) else None
    if not match:
        refuse("is not a duration with a unit", "write it like '90s', '30m' or '2h'")
    seconds = int(match["number"]) * DURATION_UNITS[match["unit"]]
    if not 1 <= seconds <= maximum:
        refuse(f"is zero or longer than {maximum // 3600}h", f"write a duration from '1s' to '{maximum // 3600}h'")
    return seconds


def Duration(maximum: int = 366 * 86400):
    """A duration such as '30m'; the model holds it in seconds."""
    return Annotated[int, BeforeValidator(lambda v: duration_seconds(v, maximum))]


def NonEmpty(item):
    """A list of at least one item: an empty one would mean 'everything' to sshd and friends."""
    return Annotated[list[item], Strict(), Field(min_length=1)]


def Items(item):
    return Annotated[list[item], Strict()]


def DurationText(maximum: int = 366 * 86400):
    """A duration such as '720h', kept as written (for programs that read it themselves)."""
    return Annotated[str, Strict(), AfterValidator(lambda v: duration_seconds(v, maximum) and v)]


# A file on the operator's machine ('~' allowed): any characters but control characters.
LocalPath = Annotated[str, Strict(), _matching(
    r"[^\x00-\x1f\x7f]+", "is not a file path", "write the path of a file on this machine", 4096)]

Version = Annotated[str, Strict(), _matching(
    r"[0-9][A-Za-z0-9.+~:-]*", "is not a package version", "write it as apt shows it, e.g. '4.1.1'", 64)]
