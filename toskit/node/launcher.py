"""tos-session's entry point: the __main__.py of its zip (roles/sessions.py bundles it).

Python keeps no bytecode for modules imported from a zip: every call compiled tosnode from
source again, ~2.7 s under the lab's emulation, and the idle policy runs the tool every 30 s.
Run as root, this unpacks the zip's tosnode once per version into a folder that is root's alone,
where Python keeps the bytecode; other users, or a folder anyone else could write, run from the
zip as before. Standard library only: this runs before tosnode can be imported.
"""

import hashlib
import os
import shutil
import stat
import sys
import tempfile
import zipfile

# TOS_SESSION_CACHE moves it (the unit tests do; a node has no reason to).
CACHE = os.environ.get("TOS_SESSION_CACHE", "/var/cache/tos-session")


def _roots_alone(path: str) -> bool:
    """A real folder (not a link) owned by root that no group or other user can write."""
    st = os.lstat(path)
    return stat.S_ISDIR(st.st_mode) and st.st_uid == 0 and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def unpacked(bundle: str, cache: str | None = None) -> str | None:
    """The folder holding this bundle's tosnode (unpacked now if this version is new), or None:
    run from the zip. Earlier versions' folders are removed (cli imports every module at start,
    so a call of an earlier version still running needs none of its files)."""
    if os.geteuid() != 0:
        return None
    cache = cache or CACHE
    try:
        with open(bundle, "rb") as f:
            version = hashlib.sha256(f.read()).hexdigest()[:16]
        os.makedirs(cache, mode=0o700, exist_ok=True)
        if not _roots_alone(cache):
            return None
        target = os.path.join(cache, version)
        if not os.path.isdir(target):
            work = tempfile.mkdtemp(dir=cache, prefix=".unpack-")
            with zipfile.ZipFile(bundle) as z:
                z.extractall(work, [n for n in z.namelist() if n.startswith("tosnode/") and n.endswith(".py")])
            try:
                os.rename(work, target)
            except OSError:  # another call unpacked the same version first
                shutil.rmtree(work, ignore_errors=True)
            for other in os.listdir(cache):
                if other != version and not other.startswith(".unpack-"):
                    shutil.rmtree(os.path.join(cache, other), ignore_errors=True)
        return target if _roots_alone(target) else None
    except (OSError, zipfile.BadZipFile):
        return None


def main() -> None:
    folder = unpacked(sys.argv[0])
    if folder:
        sys.path.insert(0, folder)
    from tosnode.cli import main as cli
    sys.exit(cli())


if __name__ == "__main__":
    main()
