"""The gate's reading of a staged command line: what would run, read by bash's own grammar (bashlex, a
port of bash's parser), never by patterns over the raw text.

A line is read, or refused with the reasons. Read, it is a small tree: simple commands (argv and
redirections), joined by `|`, `;`, `&&` or `||`. It is shown to the person as `script`, a canonical
bash line built from the reading itself (each word quoted by shlex), and that script, and nothing
else, is what runs: a lone command as its argv without a shell, anything else by bash. So what the
person approves is what runs, whatever quoting tricks the staged line played.

Refused: what is not one printable line (controls, NUL, newlines, invisible or bidi characters,
other spaces than U+0020, over MAX_LINE characters); what bash would expand at run time (parameters,
command and process substitution, arithmetic, globs, braces: the approval would be for a text, not
for what it becomes); compound commands, functions, background jobs, assignments, here-documents,
comments; any redirection but <, > and >> into a named path. Words outside ASCII are shown escaped,
and a command's name must be ASCII (a look-alike such as Cyrillic "г" in "гm" is not `rm`).
"""

import hashlib
import json
import re
import shlex
import unicodedata
from dataclasses import dataclass

import bashlex
import bashlex.errors

MAX_LINE = 2048  # characters: a command line a person types and reads before approving it
SHELL_SPECIAL = set("$`*?[]{}")  # bash expands these outside single quotes (parameters, globs, braces)
MOST_NESTING = 32  # brackets deep: bashlex recurses (a deeper line would exhaust Python's stack)
# A command name as the policy names commands; bash's reserved words (as the first word of a
# command bash reads them as syntax, whatever a reading of them as argv says) are none.
COMMAND_NAME = re.compile(r"[A-Za-z0-9._+/-]+")
RESERVED = {"!", "case", "coproc", "do", "done", "elif", "else", "esac", "fi", "for", "function", "if", "in",
            "select", "then", "time", "until", "while", "{", "}", "[[", "]]"}
JOINERS = {"|", ";", "&&", "||"}
REDIRECTIONS = {"<", ">", ">>"}


class Unreadable(ValueError):
    """The line cannot be read into something that runs exactly as shown; args: the reasons."""


@dataclass(frozen=True)
class Redirect:
    kind: str  # <, > or >>
    path: str  # as read: ~ expanded to the session's home


@dataclass(frozen=True)
class Command:
    argv: tuple
    redirects: tuple = ()

    def script(self) -> str:
        return " ".join([shlex.join(self.argv), *(f"{r.kind} {shlex.quote(r.path)}" for r in self.redirects)])


@dataclass(frozen=True)
class Reading:
    line: str            # as staged
    commands: tuple      # Command, in order
    joiners: tuple       # between them: len(commands) - 1 of |, ;, &&, ||
    notes: tuple = ()    # what the person should know (e.g. words shown escaped)

    @property
    def needs_shell(self) -> bool:
        return len(self.commands) > 1 or bool(self.commands[0].redirects)

    @property
    def script(self) -> str:
        """The reading as one bash line: what is shown, and what runs."""
        parts = [self.commands[0].script()]
        for joiner, command in zip(self.joiners, self.commands[1:]):
            parts.append(f"{joiner} {command.script()}")
        return " ".join(parts)

    @property
    def shown(self) -> str:
        """The script with every character outside printable ASCII escaped (\\uXXXX)."""
        return "".join(c if c.isascii() else f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}"
                       for c in self.script)

    @property
    def digest(self) -> str:
        """What an approval is bound to: the staged line and its reading, exactly."""
        canonical = json.dumps({"line": self.line, "script": self.script, "shell": self.needs_shell},
                               sort_keys=True, ensure_ascii=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


def character_problems(line: str) -> list:
    """Each character that is not printable text on one line, named by its code point."""
    problems = []
    for at, char in enumerate(line):
        category = unicodedata.category(char)
        if char == " " or category[0] in "LMNPS":
            continue
        name = unicodedata.name(char, "a control character" if category == "Cc" else "unnamed")
        problems.append(f"character {at + 1} is U+{ord(char):04X} ({name}, {category}): not printable text on one "
                        f"line; retype it")
    return problems


def read(line: str, home: str) -> Reading:
    """The reading of `line` (a command for a session whose home is `home`), or Unreadable."""
    if len(line) > MAX_LINE:
        raise Unreadable(f"the line has {len(line)} characters; at most {MAX_LINE} are read")
    problems = character_problems(line)
    if problems:
        raise Unreadable(*problems)
    if not line.strip():
        raise Unreadable("the line is empty")
    if _nesting(line) > MOST_NESTING:
        raise Unreadable(f"brackets nest deeper than {MOST_NESTING}: not read")
    try:
        trees = bashlex.parse(line)
    except Exception as e:  # noqa: BLE001 whatever bashlex fails with, the line is not read (and nothing runs)
        raise Unreadable(f"bash would not read it as a command line ({type(e).__name__}: {str(e)[:200]})") from None
    if len(trees) != 1:
        raise Unreadable("one command line at a time")
    reader = _Reader(line, home)
    reader.visit(trees[0])
    reader.check_covered()
    if reader.problems:
        raise Unreadable(*reader.problems)
    return Reading(line, tuple(reader.commands), tuple(reader.joiners), tuple(reader.notes))


def _nesting(line: str) -> int:
    """How deep brackets of any kind nest (quotes not considered: an over-estimate refuses, never admits)."""
    depth = most = 0
    for char in line:
        depth += char in "({["
        depth -= char in ")}]" and depth > 0
        most = max(most, depth)
    return most


class _Reader:
    """Walks bashlex's tree, taking only what the gate can show exactly; anything else is a problem."""

    def __init__(self, line: str, home: str):
        self.line, self.home = line, home
        self.commands, self.joiners, self.problems, self.notes = [], [], [], []
        self.covered = [False] * len(line)

    def cover(self, node) -> None:
        for at in range(*node.pos):
            self.covered[at] = True

    def visit(self, node) -> None:
        kind = node.kind
        if kind in ("list", "pipeline"):
            parts = node.parts
            if kind == "list" and parts and parts[-1].kind == "operator" and parts[-1].op == ";":
                self.cover(parts[-1])  # a trailing ; ends the line: nothing follows it
                parts = parts[:-1]
            for part in parts:
                self.visit(part)
        elif kind in ("operator", "pipe"):
            op = node.op if kind == "operator" else node.pipe
            self.cover(node)
            if op not in JOINERS:
                self.problems.append(f"{op!r} is not run by the gate (it runs one line in the foreground: "
                                     f"{', '.join(sorted(JOINERS))} join commands)")
            self.joiners.append(op)
        elif kind == "command":
            self.command(node)
        else:
            self.cover(node)
            self.problems.append(f"{_said(kind)} at character {node.pos[0] + 1}: not run by the gate; stage its "
                                 f"commands one line at a time")

    def command(self, node) -> None:
        argv, redirects = [], []
        for part in node.parts:
            if part.kind == "word":
                value = self.word(part)
                if value is not None:
                    argv.append(value)
            elif part.kind == "redirect":
                redirect = self.redirect(part)
                if redirect is not None:
                    redirects.append(redirect)
            else:
                self.cover(part)
                self.problems.append(f"{_said(part.kind)} ({self.line[slice(*part.pos)]!r}): not run by the gate")
        if not argv:
            self.problems.append("a redirection without a command")
            return
        if not argv[0].isascii():
            self.problems.append(f"the command name {ascii(argv[0])} is "
                                 f"not ASCII: a look-alike of another command's name?")
        elif argv[0] in RESERVED or not COMMAND_NAME.fullmatch(argv[0]):
            self.problems.append(f"{argv[0]!r} is not a command name the gate runs (bash's reserved words, "
                                 f"assignments and names outside letters, digits and . _ + / - are not)")
        for at, word in enumerate(argv[1:], 2):
            if not word.isascii():
                self.notes.append(f"word {at} of {argv[0]!r} has characters outside ASCII: shown escaped")
        self.commands.append(Command(tuple(argv), tuple(redirects)))

    def word(self, node) -> str | None:
        """The word's value, ~ at its start expanded to the home; None (and a problem) if bash would
        expand anything else in it at run time."""
        self.cover(node)
        raw = self.line[slice(*node.pos)]
        value = node.word
        for part in getattr(node, "parts", []):
            if part.kind == "tilde" and part.value == "~" and part.pos[0] == node.pos[0]:
                value = self.home + value[1:]
                continue
            self.problems.append(f"{_said(part.kind)} in {raw!r}: bash expands it when it runs, so what ran "
                                 f"would not be what was approved")
            return None
        special = sorted(set(raw) & SHELL_SPECIAL)
        single_quoted = re.fullmatch(r"'[^']*'", raw) is not None  # one single-quoted string: nothing in it is special
        if special and not single_quoted:
            self.problems.append(f"{' '.join(special)} in {raw!r}: bash would expand it (globs, braces, $); "
                                 f"name the files, or put the whole word in single quotes")
            return None
        if "~" in raw[1:] and not single_quoted:  # bash expands some (after = or :), a reading cannot tell
            self.problems.append(f"~ inside {raw!r}: bash may expand it; put the whole word in single quotes")
            return None
        if not node.parts and _posix_words(raw) != [value]:  # two readers of the quoting must agree
            self.problems.append(f"the quoting of {raw!r} is read two ways (as {value!r} and as "
                                 f"{_posix_words(raw)!r}); write it more simply")
            return None
        return value

    def redirect(self, node) -> Redirect | None:
        self.cover(node)
        target = getattr(node, "output", None)
        if node.type not in REDIRECTIONS or getattr(node, "heredoc", None) is not None \
                or target is None or not hasattr(target, "word"):
            self.problems.append(f"the redirection {self.line[slice(*node.pos)]!r} is not run by the gate: "
                                 f"{', '.join(sorted(REDIRECTIONS))} into a named file are")
            return None
        if getattr(node, "input", None) is not None:
            self.problems.append(f"the redirection {self.line[slice(*node.pos)]!r} names a descriptor: not run by "
                                 f"the gate")
            return None
        path = self.word(target)
        return Redirect(node.type, path) if path is not None else None

    def check_covered(self) -> None:
        """Text bashlex read as nothing (a comment) would be shown to no one: refused."""
        left = "".join(c if not seen else " " for c, seen in zip(self.line, self.covered)).strip()
        if left:
            self.problems.append(f"{left!r} is not part of any command (a comment?): remove it")


def _posix_words(raw: str) -> list | None:
    """The word's quote removal by Python's shlex (POSIX rules), a second reading beside bashlex's."""
    try:
        return shlex.split(raw, comments=False, posix=True)
    except ValueError:
        return None


def _said(kind: str) -> str:
    return {"commandsubstitution": "command substitution", "processsubstitution": "process substitution",
            "parameter": "a parameter ($...)", "assignment": "an assignment", "compound": "a compound command",
            "function": "a function", "reservedword": "a reserved word", "heredoc": "a here-document",
            "tilde": "a ~user"}.get(kind, f"a {kind}")
