"""Operations the roles share, built from pyinfra's own."""

from pyinfra import host
from pyinfra.operations import server

from .facts import PasswdEntry

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
