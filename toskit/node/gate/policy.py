"""The gate's verdict on a reading (reading.py), by the tenant's policy: data from group_data
(toskit/gate_data.py validates it and documents each key), which the gateway sends the session.

    run          a plain approval runs it (after the wait)
    destructive  it needs a fresh passkey assertion bound to exactly this command
    denied       nothing runs it

A policy is {"default": VERDICT, "own_paths": [PATH, ...], "commands": {NAME: RULE}}: RULE is a verdict,
or {"verdict": VERDICT, "destructive_when": [CONDITION, ...]}. Conditions, each a fixed reading of the
argv (never of the raw text):

    recursive          -r, -R (also within a cluster such as -rf), --recursive or a prefix of it
                       (GNU tools take --rec)
    outside_own_paths  a path argument, an option's =value or a value glued to a short option
                       (-t/etc) that looks like a path, outside own_paths, as it resolves in the
                       session now (links followed: a link into /etc is /etc)
    long_option        any --option (some name programs or files: sort --compress-program=sh)

A redirection that writes (> or >>) outside own_paths is destructive whatever the command, and one from
or to bash's /dev/tcp or /dev/udp (a network connection) is denied. The line's
verdict is the strictest of its commands'. A command the policy does not name gets its default
(shipped: denied), and a line that could not be read is denied before any policy is asked.
"""

import os
from dataclasses import dataclass

VERDICTS = ("run", "destructive", "denied")  # in order of strictness
CONDITIONS = ("recursive", "outside_own_paths", "long_option")
NETWORK_PATHS = ("/dev/tcp/", "/dev/udp/")  # bash opens a connection for these, no file


@dataclass(frozen=True)
class Verdict:
    verdict: str     # one of VERDICTS
    reasons: tuple   # one line per command (and per redirection that made it stricter)


def strictest(verdicts) -> str:
    return max(verdicts, key=VERDICTS.index, default="run")


def judge(reading, policy: dict, home: str) -> Verdict:
    """The verdict on a reading.Reading (this module imports no parser: the deploy's schema reads its names)."""
    own = [_resolved(home + path[1:] if path.startswith("~") else path, home) for path in policy["own_paths"]]
    verdicts, reasons = [], []
    for command in reading.commands:
        verdict, why = _command_verdict(command.argv, policy, own, home)
        verdicts.append(verdict)
        reasons.append(f"{command.argv[0]}: {verdict} ({why})")
        for redirect in command.redirects:
            if redirect.path.startswith(NETWORK_PATHS):
                verdicts.append("denied")
                reasons.append(f"{redirect.kind} {redirect.path}: denied (bash would open a network connection)")
            elif redirect.kind != "<" and not _inside(_resolved(redirect.path, home), own):
                verdicts.append("destructive")
                reasons.append(f"{redirect.kind} {redirect.path}: destructive (writes outside "
                               f"{', '.join(policy['own_paths'])})")
    return Verdict(strictest(verdicts), tuple(reasons))


def _command_verdict(argv: tuple, policy: dict, own: list, home: str) -> tuple[str, str]:
    rule = policy["commands"].get(argv[0])
    if rule is None:
        return policy["default"], "not named in the policy"
    if isinstance(rule, str):
        return rule, "the policy says so"
    met = [c for c in rule.get("destructive_when", ()) if _meets(c, argv[1:], own, home)]
    if met and rule["verdict"] == "run":
        return "destructive", " and ".join(c.replace("_", " ") for c in met)
    return rule["verdict"], "the policy says so" if not rule.get("destructive_when") else \
        f"not {' nor '.join(c.replace('_', ' ') for c in rule['destructive_when'])}"


def _meets(condition: str, args: tuple, own: list, home: str) -> bool:
    options = []
    operands = []
    for at, arg in enumerate(args):
        if arg == "--":
            operands.extend(args[at + 1:])
            break
        (options if arg.startswith("-") and arg != "-" else operands).append(arg)
    if condition == "recursive":
        return any("--recursive".startswith(o.split("=", 1)[0]) and len(o) >= 3 if o.startswith("--")
                   else "r" in o or "R" in o for o in options)
    if condition == "outside_own_paths":
        paths = operands + [value for o in options if (value := _option_path(o)) is not None]
        return any(not _inside(_resolved(p, home), own) for p in paths)
    if condition == "long_option":
        return any(o.startswith("--") for o in options)
    raise ValueError(f"no such condition {condition!r} (known: {', '.join(CONDITIONS)})")


def _option_path(option: str) -> str | None:
    """The path an option carries, if it looks like one: --opt=PATH, or glued to a short one (-t/etc,
    -C.., -o~/x): from its first / . or ~ on. None: no path in it."""
    if "=" in option:
        value = option.split("=", 1)[1]
        return value if value.startswith(("/", "~", ".")) or "/" in value else None
    if option.startswith("--"):
        return None
    at = min((i for i in (option.find("/"), option.find("."), option.find("~")) if i > 0), default=-1)
    return option[at:] if at > 0 else None


def _resolved(path: str, home: str) -> str:
    """As the path resolves in the session now, from its home: .. taken out, links followed (a link
    the tenant made into /etc is /etc). The reading wrote out ~ already: a ~ left is a name."""
    return os.path.realpath(os.path.join(home, path))


def _inside(path: str, own: list) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in own)
