"""The types of the site's data. Each refuses a bad value with why, and how to write it instead.

Every pattern is matched against the whole value (re.fullmatch, ASCII only): a trailing newline,
a shell metacharacter or a non-ASCII digit never passes. Values land in unit files, commands,
exports and Vault policies, so they are held to a shape rather than escaped.
"""

import re
from fractions import Fraction
from typing import Annotated, Literal, Optional

from pydantic import AfterValidator, BeforeValidator, Field, Strict
from pydantic_core import PydanticCustomError

# Literal and Optional are imported from here by the roles' schemas, with the types below.


def refuse(why: str, fix: str):
    # The message is a template: braces in `why` would be read as fields.
    raise PydanticCustomError("tos", why.replace("{", "(").replace("}", ")"), {"fix": fix})


def matching(pattern: str, why: str, fix: str, max_length: int = 255):
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
NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*", re.ASCII)  # 127.1 and 0x7f000001 are addresses


def is_hostname(value: str) -> bool:
    """RFC 1123, lower case, and not an address in disguise (the last label is not a number)."""
    return bool(re.fullmatch(HOSTNAME, value, re.ASCII)) and not NUMERIC_LABEL.fullmatch(value.rsplit(".", 1)[-1])


def _hostname(value: str) -> str:
    if not is_hostname(value) or value == "localhost" or len(value.split(".")[0]) > 63:
        refuse("is not a valid hostname (RFC 1123: a-z, 0-9, '-', dots; not a number, not localhost)",
               "write a name such as node1 or node1.example.org")
    return value


Hostname = Annotated[str, Strict(), AfterValidator(_hostname)]

# Names a config file or command takes as one word: packages, algorithms, users, options.
PlainName = Annotated[str, Strict(), matching(
    r"[A-Za-z0-9][A-Za-z0-9@._+:-]*", "is not a plain name",
    "use letters, digits and . _ + : @ - only (one name per list item)", 128)]
PackageName = Annotated[str, Strict(), matching(
    r"[a-z0-9][a-z0-9+.-]+(:[a-z0-9]+)?(=[0-9][A-Za-z0-9.+~:-]*)?", "is not a Debian package name",
    "write the package's name as apt knows it, e.g. 'vim', 'libc6:i386' or 'vim=2:9.1' (one per item)", 128)]
VAULT_RESERVED_MOUNTS = {"sys", "identity", "cubbyhole", "token", "auth", "secret"}


def _own_mount(value: str) -> str:
    if value in VAULT_RESERVED_MOUNTS:
        refuse("is a path Vault itself uses", "pick a mount of the toolkit's own, e.g. the default")
    return value


MountName = Annotated[str, Strict(), matching(
    r"[a-z0-9][a-z0-9_-]*", "is not a Vault mount name", "use a-z, 0-9, '_' and '-', e.g. 'transit'", 64),
    AfterValidator(_own_mount)]
MountOption = Annotated[str, Strict(), matching(
    r"[a-z0-9_]+(=[a-z0-9_.:]+)?", "is not an NFS mount option", "write options like 'hard' or 'timeo=150'", 64)]


def _log_size(value: str) -> str:
    if int(value[:-1]) * {"k": 1, "m": 1024, "g": 1024**2}[value[-1]] > 1024**2:
        refuse("is more than 1g per file", "keep container logs bounded [CIS 2.13]: write at most '1g'")
    return value


LogSize = Annotated[str, Strict(), matching(
    r"[1-9][0-9]{0,5}[kmg]", "is not a log file size", "write it like '10m' (k, m or g)"), AfterValidator(_log_size)]

# Accounts the deploy creates or changes: never one the system (or a person) already relies on.
SYSTEM_ACCOUNTS = frozenset({
    "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp", "proxy",
    "www-data", "backup", "list", "irc", "gnats", "nobody", "nogroup", "_apt", "messagebus", "sshd",
    "systemd-network", "systemd-resolve", "systemd-timesync", "systemd-journal", "systemd-coredump",
    "polkitd", "statd", "_rpc", "_chrony", "chrony", "tss", "docker", "adm", "sudo", "staff", "users",
    "shadow", "utmp", "tty", "disk", "kmem", "operator", "kvm", "video", "audio", "crontab", "plugdev",
    "netdev", "input", "render", "dialout", "dnsmasq", "avahi", "ntpsec", "cdrom", "floppy", "tape",
    "voice", "fax", "src", "sasl", "scanner", "lpadmin", "sgx", "ssh", "admin", "wheel",
})


def _own_account(value: str) -> str:
    if value in SYSTEM_ACCOUNTS or value.startswith(("systemd-", "_")):
        refuse("is an account the system already uses; the deploy would change its shell and home",
               "pick a name of the toolkit's own, e.g. the default")
    return value


AccountName = Annotated[str, Strict(), matching(
    r"[a-z_][a-z0-9_-]{0,31}", "is not a user name", "use a-z, 0-9, '_' and '-', starting with a letter"),
    AfterValidator(_own_account)]


# Trees a toolkit directory may never be in (or be): the system's own, and the runtime's data.
SYSTEM_TREES = ("/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/boot", "/dev", "/proc", "/sys",
                "/root", "/home", "/var/lib/docker", "/var/lib/containerd", "/var/lib/apt", "/var/lib/dpkg",
                "/var/log", "/var/cache", "/var/spool")
SYSTEM_DIRS = {"/var/lib", "/var/tmp", "/var/local", "/run/user", "/usr/local"}


def _path(prefix: str, example: str, owned: bool):
    def check(value: str) -> str:
        parts = value.split("/")[1:]
        if not value.startswith(prefix) or any(p in ("", ".", "..") for p in parts) or len(value) > 255 \
                or not all(re.fullmatch(r"[A-Za-z0-9._:-]+", p, re.ASCII) for p in parts):
            refuse(f"is not an absolute path under {prefix} of letters, digits and . _ - : (no '..')",
                   f"write a path such as {example}")
        if owned and (len(parts) < 2 or value in SYSTEM_DIRS
                      or any(value == tree or value.startswith(tree + "/") for tree in SYSTEM_TREES)):
            refuse("is a system directory (or inside one): the deploy would take it over",
                   f"give the toolkit a directory of its own, such as {example}")
        return value
    return Annotated[str, Strict(), AfterValidator(check)]


AbsolutePath = _path("/", "/srv/tos/volumes", owned=False)
OwnedPath = _path("/", "/srv/tos/volumes", owned=True)  # a directory the deploy creates and owns

# Block devices IO limits can bind (systemd ignores a limit on anything else).
BLOCK_DEVICE = (r"/dev/((sd|vd|xvd|hd)[a-z]+|nvme[0-9]+n[0-9]+|(md|dm-)[0-9]+|mapper/[A-Za-z0-9._-]+"
                r"|disk/by-[a-z]+/[A-Za-z0-9._:+-]+)")
DevicePath = Annotated[str, Strict(), matching(
    BLOCK_DEVICE, "is not a block device", "write a disk such as /dev/vda, /dev/nvme0n1 or /dev/disk/by-id/...")]


def _list_rule(offending, why: str, fix: str):
    """A rule over a whole list: `offending(items)` names the items that break it."""
    def check(items: list) -> list:
        bad = offending(items)
        if bad:
            names = ", ".join(bad)
            refuse(why.format(names=names), fix.format(names=names))
        return items
    return AfterValidator(check)


def including(*required: str):
    """A list that must keep these items: the baseline states what it relies on itself."""
    return _list_rule(lambda items: [i for i in required if i not in items],
                      "leaves out {names}, which the hardening relies on",
                      "keep {names} in the list (add to it, never take these out)")


def excluding(*forbidden: str):
    """A list that must not hold these items (they would undo the hardening)."""
    return _list_rule(lambda items: [i for i in items if i in forbidden],
                      "has {names}, which undoes the hardening", "take {names} out")


def allowed(choices, what: str):
    """Items from a known-good set only (e.g. sshd's modern algorithms)."""
    return _list_rule(lambda items: [i for i in items if i not in choices],
                      "has {names}, not among the " + what + " this baseline allows",
                      "use only: " + ", ".join(sorted(choices)))


UNITS = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
SIZE = re.compile(r"(?P<number>[0-9]{1,15}(?:\.[0-9]{1,6})?)(?P<unit>[KMGT])", re.ASCII)
MAX_SIZE = 2**64 - 1
DURATION = re.compile(r"(?P<number>[0-9]{1,9})(?P<unit>[smh])", re.ASCII)
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600}


def size_bytes(value: str, minimum: int = 1, multiple: int = 1, maximum: int = MAX_SIZE) -> int:
    """'512M' -> bytes. The unit is required: K, M, G or T (powers of 1024)."""
    match = SIZE.fullmatch(value) if isinstance(value, str) else None
    if not match:
        refuse("is not a size with a unit", "write it like '512M' or '2G' (K, M, G, T: powers of 1024)")
    exact = Fraction(match["number"]) * UNITS[match["unit"]]
    if exact.denominator != 1:
        refuse("is not a whole number of bytes", "write it in a smaller unit, e.g. '1536M' for '1.5G'")
    size = int(exact)
    if size > maximum:
        refuse(f"is larger than {_human(maximum) if maximum < MAX_SIZE else '2^64 bytes'}",
               f"write a realistic size, at most {_human(maximum) if maximum < MAX_SIZE else '16E'}")
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


def Size(minimum: int = 1, multiple: int = 1, maximum: int = MAX_SIZE):
    """A size such as '512M'; the model holds it in bytes."""
    return Annotated[int, BeforeValidator(lambda v: size_bytes(v, minimum, multiple, maximum))]


def duration_seconds(value: str, maximum: int = 366 * 86400, minimum: int = 1) -> int:
    """'30m' -> 1800. The unit is required: s, m or h; zero is refused, never taken as 'the default'."""
    match = DURATION.fullmatch(value) if isinstance(value, str) else None
    if not match:
        refuse("is not a duration with a unit", "write it like '90s', '30m' or '2h'")
    seconds = int(match["number"]) * DURATION_UNITS[match["unit"]]
    fix = f"write a duration from '{minimum}s' to '{maximum // 3600}h'"
    if seconds == 0:
        refuse("is zero", fix)
    if seconds < minimum:
        refuse(f"is shorter than {minimum}s", fix)
    if seconds > maximum:
        refuse(f"is longer than {maximum // 3600}h", fix)
    return seconds


def Duration(maximum: int = 366 * 86400):
    """A duration such as '30m'; the model holds it in seconds."""
    return Annotated[int, BeforeValidator(lambda v: duration_seconds(v, maximum))]


def NonEmpty(item):
    """A list of at least one item: an empty one would mean 'everything' to sshd and friends."""
    return Annotated[list[item], Strict(), Field(min_length=1)]


def Items(item):
    return Annotated[list[item], Strict()]


def DurationText(maximum: int = 366 * 86400, minimum: int = 1):
    """A duration such as '720h', kept as written (for programs that read it themselves)."""
    return Annotated[str, Strict(), AfterValidator(lambda v: duration_seconds(v, maximum, minimum) and v)]


# A file on the operator's machine ('~' allowed): any characters but control characters.
# (/dev/null is no file: ssh's known hosts there would trust any host.)
LocalPath = Annotated[str, Strict(), matching(
    r"(?!/dev/)[^\x00-\x1f\x7f]+", "is not a file path", "write the path of a file on this machine", 4096)]

Version = Annotated[str, Strict(), matching(
    r"[0-9][A-Za-z0-9.+~:-]*", "is not a package version", "write it as apt shows it, e.g. '4.1.1'", 64)]
