"""Operations the roles share, built from pyinfra's own."""

import posixpath
import shlex
from io import StringIO
from pathlib import Path

from jinja2 import TemplateError
from pyinfra import host, logger, state
from pyinfra.api import FileUploadCommand, OperationError, operation
from pyinfra.api.util import get_file_io, get_file_sha1, get_template
from pyinfra.facts.files import FileContents
from pyinfra.operations import server
from pyinfra.operations.util.files import generate_color_diff

from .facts import ManagedFile, PasswdEntry
from .templating import JINJA_OPTIONS

NO_LOGIN = "/usr/sbin/nologin"
NO_HOME = "/nonexistent"


def system_account(name: str, description: str, uid: int | None = None, group: str | None = None):
    """A system account that cannot log in and has no home. Returns the operation, or None when
    the account is already as wanted (no operation, so a no-op deploy stays fast)."""
    entry = host.get_fact(PasswdEntry, account=name)
    options = f"--shell {NO_LOGIN} --home-dir {NO_HOME}" + (f" --uid {uid}" if uid is not None else "") + \
        (f" --gid {group}" if group else "")
    if entry is None:
        return server.shell(name=description, commands=[f"useradd --system --no-create-home {options} {name}"])
    if (entry["shell"], entry["home"]) != (NO_LOGIN, NO_HOME) or (uid is not None and entry["uid"] != uid):
        return server.shell(name=description, commands=[f"usermod {options} {name}"])
    return None


@operation()
def put(src, dest: str, user: str = "root", group: str = "root", mode: str = "644", validate: str | None = None):
    """A file with this content, owner and mode (src: a local path or a file-like object).

    files.put asks three facts per file (File, Directory, Sha1File); this asks one (ManagedFile),
    and a deploy that changes nothing is mostly facts. The parent folder is made on upload.
    validate: a command run on the new file before it replaces the old one ("{path}": its path);
    if it fails, the old file stays and the deploy stops on this host."""
    current = host.get_fact(ManagedFile, path=dest)
    target = shlex.quote(dest)
    if current and current["type"] != "file":
        raise OperationError(f"{dest} on {host.name} is not a regular file; move it away, then deploy again")
    fresh = current is None or current["sha1"] != get_file_sha1(src)
    if fresh:
        if current and state.config.DIFF and int(mode, 8) & 0o077:  # a private file's content stays unshown
            _log_diff(src, dest)
        yield f"mkdir -p {shlex.quote(posixpath.dirname(dest))}"
        staged = f"{dest}.tos-new" if validate else dest
        yield FileUploadCommand(src, staged, remote_temp_filename=host.get_temp_filename(dest))
    # A fresh upload (staged or not) gets its owner and mode before it takes the old file's place.
    where = shlex.quote(staged) if fresh else target
    if fresh or (current["user"], current["group"]) != (user, group):
        yield f"chown {user}:{group} {where}"
    if fresh or current["mode"] != int(mode, 8):
        yield f"chmod {mode} {where}"
    if fresh and validate:
        yield validate.format(path=where)
        yield f"mv -f {where} {target}"
    if not fresh and (current["user"], current["group"], current["mode"]) == (user, group, int(mode, 8)):
        host.noop(f"file {dest} is in place")


@operation()
def template(src: Path, dest: str, user: str = "root", group: str = "root", mode: str = "644",
             validate: str | None = None, **values):
    """`put` of a jinja2 template rendered with the roles' options (toskit.templating), the
    host and the values given, as pyinfra's files.template renders it."""
    try:
        text = get_template(str(src), dict(JINJA_OPTIONS)).render(host=host, state=state,
                                                                  inventory=state.inventory, **values)
    except TemplateError as error:
        raise OperationError(f"template {src} for {host.name}: {error}") from None
    yield from put._inner(src=StringIO(text), dest=dest, user=user, group=group, mode=mode, validate=validate)


def _log_diff(src, dest: str) -> None:
    """What `pyinfra --diff` shows for a file about to change."""
    current = [line + "\n" for line in host.get_fact(FileContents, path=dest) or []]
    try:
        with get_file_io(src, "r") as f:
            desired = f.readlines()
    except UnicodeDecodeError:
        return
    host.log(f"Will modify {dest}", logger.info)
    for line in generate_color_diff(current, desired):
        logger.info("  %s", line)
