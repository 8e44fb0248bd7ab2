"""tos-session's entry point: the __main__.py of its zip (roles/sessions.py bundles it).

Python keeps no bytecode for modules imported from a zip: every call compiled tosnode from
source again, ~2.7 s under the lab's emulation, and the idle policy runs the tool every 30 s.
Run as root, this unpacks the zip's tosnode once per version into a folder that is root's alone,
where Python keeps the bytecode; other users, or a folder anyone else could write, run from the
zip as before, and so does a call whose unpacked copy fails to import. Standard library only:
this runs before tosnode can be imported.
"""

import io
import hashlib
import os
import re
import shutil
import stat
import sys
import tempfile
import time
import zipfile

# TOS_SESSION_CACHE moves it (the unit tests do; a node has no reason to).
CACHE = os.environ.get("TOS_SESSION_CACHE", "/var/cache/tos-session")
VERSION = re.compile(r"[0-9a-f]{16}")
# An earlier version's folder (or a killed call's unpacking) is removed once unused this long: a
# call of that version may still be importing from it (seconds, the first time, under emulation).
KEEP_SECONDS = 600


def _roots_alone(path: str) -> bool:
    """A real folder (not a link) owned by root that no group or other user can write."""
    st = os.lstat(path)
    return stat.S_ISDIR(st.st_mode) and st.st_uid == 0 and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _unpack(bundle: bytes, work: str) -> None:
    """tosnode's sources, each synced, then the folder: a crash leaves no empty module behind."""
    with zipfile.ZipFile(io.BytesIO(bundle)) as z:
        for name in z.namelist():
            if name.startswith("tosnode/") and name.endswith(".py") and name.count("/") == 1:
                target = os.path.join(work, name)
                os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
                with open(target, "wb") as f:
                    f.write(z.read(name))
                    f.flush()
                    os.fsync(f.fileno())
    for folder in (os.path.join(work, "tosnode"), work):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove_stale(cache: str, keep: str) -> None:
    now = time.time()
    for other in os.listdir(cache):
        path = os.path.join(cache, other)
        ours = VERSION.fullmatch(other) or other.startswith(".unpack-")
        if ours and other != keep and now - os.lstat(path).st_mtime > KEEP_SECONDS:
            shutil.rmtree(path, ignore_errors=True)


def unpacked(bundle_path: str, cache: str | None = None) -> str | None:
    """The folder holding this bundle's tosnode (unpacked now if this version is new), or None:
    run from the zip."""
    if os.geteuid() != 0:
        return None
    cache = cache or CACHE
    try:
        with open(bundle_path, "rb") as f:
            bundle = f.read()  # hashed and unpacked from the same bytes
        version = hashlib.sha256(bundle).hexdigest()[:16]
        os.makedirs(cache, mode=0o700, exist_ok=True)
        if not _roots_alone(cache):
            return None
        target = os.path.join(cache, version)
        if not os.path.isdir(target):
            work = tempfile.mkdtemp(dir=cache, prefix=".unpack-")
            _unpack(bundle, work)
            try:
                os.rename(work, target)
            except OSError:  # another call unpacked the same version first
                shutil.rmtree(work, ignore_errors=True)
            _remove_stale(cache, version)
        else:
            os.utime(target)  # its age is the time since it was last used
        return target if _roots_alone(target) else None
    except (OSError, zipfile.BadZipFile):
        return None


def main() -> None:
    folder = unpacked(sys.argv[0])
    if folder:
        sys.path.insert(0, folder)
    try:
        from tosnode.cli import main as cli
    except (ImportError, SyntaxError):
        if not folder:
            raise
        # A damaged copy: run from the zip, and unpack again next time.
        sys.path.remove(folder)
        for name in [n for n in sys.modules if n == "tosnode" or n.startswith("tosnode.")]:
            del sys.modules[name]
        shutil.rmtree(folder, ignore_errors=True)
        from tosnode.cli import main as cli
    sys.exit(cli())


if __name__ == "__main__":
    main()
