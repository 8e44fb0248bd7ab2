"""The command gate's policy as data (issue 12): its keys, the shipped defaults, and the plain policy
a tenant's session judges by (toskit/node/gate/policy.py reads it; its docstring says what each
verdict and condition means).

A tenant may override the site's command rules and default ('command_gate' in its tenants entry);
own_paths and the wait are the site's.
"""

from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Strict, Tag

from .node.gate.policy import CONDITIONS
from .schema.model import RoleData
from .schema.types import DurationText, NonEmpty, Switch, duration_seconds, matching

Verdict = Literal["run", "destructive", "denied"]
Condition = Literal[CONDITIONS]
# A command's name as it is typed (the first word of a simple command; no path: /bin/rm is not rm).
CommandName = Annotated[str, Strict(), matching(
    r"[A-Za-z0-9._+-]+", "is not a command name", "write the name as typed, e.g. 'rm' or 'mkfs.ext4'", 64)]
# Where a person's writes and deletions are their own: absolute, or ~ (the session's home) and below it.
OwnPath = Annotated[str, Strict(), matching(
    r"~(/[A-Za-z0-9._/-]*)?|/[A-Za-z0-9._/-]*", "is not ~ or an absolute path (letters, digits, . _ - /)",
    "write e.g. '~', '~/projects' or '/tmp'", 4096)]


class CommandRule(BaseModel):
    """A verdict that grows stricter when the argv meets a condition: {"verdict": "run",
    "destructive_when": ["recursive", "outside_own_paths"]}."""
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    verdict: Verdict
    destructive_when: NonEmpty(Condition)


# One error for a bad rule, not one per shape it might have had: a string is read as a verdict, anything
# else as a CommandRule (the tag names the shape in the error's key: 'command_gate_commands.rm.rule...').
Rule = Annotated[Union[Annotated[Verdict, Tag("verdict")], Annotated[CommandRule, Tag("rule")]],
                 Discriminator(lambda value: "verdict" if isinstance(value, str) else "rule")]
INSIDE_OWN = {"verdict": "run", "destructive_when": ["outside_own_paths"]}
RECURSIVE_OR_OUTSIDE = {"verdict": "run", "destructive_when": ["recursive", "outside_own_paths"]}
# What the gate ships: reading and writing inside one's own paths runs after a plain approval; deleting,
# recursive permission changes and writes elsewhere need a passkey; what runs code the gate never read
# (shells, interpreters, eval, command runners) and what formats or partitions disks is denied.
DEFAULT_COMMANDS = {
    **dict.fromkeys(["ls", "cat", "echo", "printf", "pwd", "id", "whoami", "date", "head", "tail", "wc", "grep",
                     "cut", "tr", "diff", "stat", "du", "df", "uname", "true", "false", "sleep",
                     "basename", "dirname", "realpath", "sha256sum", "md5sum", "file", "which"], "run"),
    **dict.fromkeys(["mkdir", "touch", "cp", "mv", "ln"], INSIDE_OWN),
    # sort and uniq write files (-o, a second operand), and sort runs programs (--compress-program).
    **dict.fromkeys(["sort", "uniq"], {"verdict": "run", "destructive_when": ["outside_own_paths", "long_option"]}),
    "rmdir": INSIDE_OWN,
    **dict.fromkeys(["rm", "chmod", "chown", "chgrp"], RECURSIVE_OR_OUTSIDE),
    # tar writes anywhere an archive says (-P), deletes (--remove-files) and runs programs (-I,
    # --to-command); curl and wget read config files the gate never reads (-K, -e, ~/.curlrc).
    **dict.fromkeys(["dd", "shred", "truncate", "tar", "curl", "wget"], "destructive"),
    **dict.fromkeys(["mkfs", "mkfs.ext4", "mkfs.xfs", "mkfs.vfat", "mke2fs", "mkswap", "fdisk", "sfdisk", "parted",
                     "wipefs", "sh", "bash", "dash", "zsh", "eval", "exec", "source", ".", "python3", "perl",
                     "xargs", "env", "sudo", "su", "nohup", "timeout", "watch", "find"], "denied"),
}


class TenantGate(BaseModel):
    """A tenant's own rules (its tenants entry, 'command_gate'), over the site's."""
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    commands: Optional[dict[CommandName, Rule]] = None  # merged over command_gate_commands, name by name
    default: Optional[Verdict] = None  # None: command_gate_default


class CommandGateData(RoleData):
    # [TOS] The command gate: commands staged in a person's prompt run only once read, judged and approved.
    command_gate_enabled: Switch = True
    # Wait to execute: how long a staged command waits before it can be approved (the buffer against
    # injected and accidental commands), and how long it can be approved in before it expires.
    command_gate_wait: DurationText(60) = "2s"
    command_gate_stage_expires: DurationText(3600) = "5m"
    # Verdict per command name: "run" (a plain approval), "destructive" (a passkey assertion bound to
    # the command), "denied", or {"verdict": ..., "destructive_when": [conditions]} (README: the gate).
    command_gate_commands: dict[CommandName, Rule] = DEFAULT_COMMANDS
    # What a command the rules do not name gets.
    command_gate_default: Verdict = "denied"
    # Where writes and deletions are the person's own (outside: destructive); ~ is the session's home.
    command_gate_own_paths: NonEmpty(OwnPath) = ["~", "/tmp"]


def tenant_policy(data, tenant_gate: Optional[TenantGate]) -> dict:
    """The plain policy one tenant's sessions judge by (policy.judge), from the site's keys and its own."""
    commands = {name: _plain(rule) for name, rule in data.command_gate_commands.items()}
    if tenant_gate and tenant_gate.commands:
        commands.update({name: _plain(rule) for name, rule in tenant_gate.commands.items()})
    return {"default": (tenant_gate and tenant_gate.default) or data.command_gate_default,
            "own_paths": list(data.command_gate_own_paths), "commands": commands,
            "wait_seconds": duration_seconds(data.command_gate_wait, 60),
            "expires_seconds": duration_seconds(data.command_gate_stage_expires, 3600)}


def _plain(rule) -> str | dict:
    if isinstance(rule, CommandRule):
        return {"verdict": rule.verdict, "destructive_when": list(rule.destructive_when)}
    return rule
