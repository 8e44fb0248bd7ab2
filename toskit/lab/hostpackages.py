"""The Debian packages this machine needs for the lab and the tests: one list (host-packages, beside
this file; .ci/run reads it too), installed by `lab up` when missing."""

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from . import procs

LIST = Path(__file__).with_name("host-packages")
# While it exists, apt starts no service it installs (Debian's invoke-rc.d policy): the lab runs
# its own package cache and sshd-based tests, never the system's.
POLICY_RC = Path("/usr/sbin/policy-rc.d")


def wanted() -> dict:
    """package -> a command it installs (or, for a package without one, an absolute path of a file)."""
    rows = (line.split("#", 1)[0].split() for line in LIST.read_text().splitlines())
    return {row[0]: row[1] for row in rows if row}


def missing() -> list:
    # sbin too: a root shell without it on PATH (`su` without `-`) still has the packages.
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return sorted(package for package, command in wanted().items()
                  if not (Path(command).exists() if command.startswith("/") else shutil.which(command, path=path)))


@contextmanager
def services_not_started():
    if POLICY_RC.exists():
        yield
        return
    POLICY_RC.write_text("#!/bin/sh\nexit 101\n")
    POLICY_RC.chmod(0o755)
    try:
        yield
    finally:
        POLICY_RC.unlink(missing_ok=True)


def install_missing(log=print) -> list:
    """Installs the packages whose command is not found (root only); returns them."""
    packages = missing()
    if not packages:
        return []
    log(f"installing the host packages the lab needs: {' '.join(packages)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    fix = f"install them by hand: apt-get install --no-install-recommends {' '.join(packages)}"
    with services_not_started():
        procs.run(["apt-get", "update", "-q"], "apt-get update", fix, env=env)
        procs.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
                  "installing the host packages", fix, env=env)
    return packages
