"""The tenants' session image: built once, on the operator's machine, and shipped to every node.

Each node used to build its own from the mirror: minutes of emulated dpkg per node, and nodes built
on different days held different images, so a session hibernated on one fell back to a cold start
on the other. Here mmdebstrap builds it once per recipe, reproducibly (SOURCE_DATE_EPOCH), into a
cache on this machine; the image is named by the sha256 of the tarball's bytes. Docker records that
same sha256 as the image's only layer when a node imports the tarball, so one tag means the same
bytes on every node, and the audit can check it.
"""

import fcntl
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

NODE_PROGRAMS = Path(__file__).resolve().parent / "node"
# Programs the session runs (its agent, the app launcher, Docker's health probe, the probes the
# audits attack with, the gate's audit chain check).
IMAGE_FILES = ["tos-session-agent", "tos-session-ctl", "tos-session-health", "tos-probe", "tos-app", "tos-gate-verify"]
# The command gate the agent runs (toskit/node/gate), and the parser it reads lines with: bashlex,
# pure Python, from this machine's toolkit install (Debian has no package of it; GPLv3+, its licence
# goes with it). Sources only: bytecode would make the image's bytes depend on the build.
GATE_LIB = "/usr/local/lib/tos-gate"


def gate_library() -> dict:
    """{folder in GATE_LIB: its files on this machine}, in a fixed order."""
    import bashlex
    parser = Path(bashlex.__file__).parent
    licence = next(parser.parent.glob("bashlex-*.dist-info/LICENSE"))
    return {"gate": sorted((NODE_PROGRAMS / "gate").glob("*.py")),
            "bashlex": sorted(parser.glob("*.py")) + [licence]}


# Bump when the build below changes in a way the recipe's fields do not show.
BUILDER_VERSION = 2
# The tarball's timestamps (and so its bytes) do not depend on when it was built.
SOURCE_DATE_EPOCH = "1767225600"  # 2026-01-01
# The unprivileged user sessions run as, inside the image.
SESSION_UID = 1000
SESSION_USER = f"session:x:{SESSION_UID}:{SESSION_UID}:TOS session:/home/session:/bin/sh"


class ImageBuildError(Exception):
    def __init__(self, message: str, fix: str):
        super().__init__(f"{message}\n  fix: {fix}")


@dataclass(frozen=True)
class Recipe:
    """What goes into the image. The proxy is how packages are fetched, not what they are."""
    suite: str
    mirror: str
    security_mirror: str | None
    proxy: str | None

    def key(self) -> str:
        digest = hashlib.sha256(json.dumps(
            {"builder": BUILDER_VERSION, "suite": self.suite, "mirror": self.mirror,
             "security_mirror": self.security_mirror}, sort_keys=True).encode())
        for name in IMAGE_FILES:
            digest.update((NODE_PROGRAMS / "session_image" / name).read_bytes())
        for folder, paths in gate_library().items():
            for path in paths:
                digest.update(f"{folder}/{path.name}\0".encode() + path.read_bytes())
        return digest.hexdigest()[:16]

    def sources(self) -> list:
        found = [f"deb {self.mirror} {self.suite} main", f"deb {self.mirror} {self.suite}-updates main"]
        if self.security_mirror:
            found.append(f"deb {self.security_mirror} {self.suite}-security main")
        return found


@dataclass(frozen=True)
class SessionImage:
    tarball: Path
    sha256: str

    @property
    def tag(self) -> str:
        return f"tos-session:{self.sha256[:12]}"

    @property
    def layer(self) -> str:
        """The image's layer as Docker names it after importing the tarball."""
        return f"sha256:{self.sha256}"


def mmdebstrap_argv(recipe: Recipe, output: Path) -> list:
    files = " ".join(shlex.quote(str(NODE_PROGRAMS / "session_image" / name)) for name in IMAGE_FILES)
    proxy = [f'--aptopt=Acquire::http::Proxy "{recipe.proxy}"'] if recipe.proxy else []
    return [
        "mmdebstrap", "--quiet", "--mode=auto", "--variant=essential",
        # The agent serves the session channel with websockets.
        "--include=python3,python3-websockets", "--format=tar",
        *proxy, '--aptopt=Acquire::Languages "none"',
        # No manuals, translations or docs (copyright notices stay): less to ship and import.
        "--dpkgopt=path-exclude=/usr/share/man/*", "--dpkgopt=path-exclude=/usr/share/info/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*", "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        f'--customize-hook=install -m 755 {files} "$1/usr/local/bin/"',
        *(f'--customize-hook=install -d "$1{GATE_LIB}/{folder}" && install -m 644 '
          f'{" ".join(shlex.quote(str(path)) for path in paths)} "$1{GATE_LIB}/{folder}/"'
          for folder, paths in gate_library().items()),
        f"--customize-hook=echo {shlex.quote(SESSION_USER)} >> \"$1/etc/passwd\"",
        f"--customize-hook=echo session:x:{SESSION_UID}: >> \"$1/etc/group\"",
        f'--customize-hook=mkdir -p "$1/home/session" && chown {SESSION_UID}:{SESSION_UID} "$1/home/session"',
        # Copied from this machine by mmdebstrap; Docker provides the container's own.
        '--customize-hook=rm -f "$1/etc/resolv.conf" "$1/etc/hostname"',
        recipe.suite, str(output), *recipe.sources(),
    ]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(2**20):
            digest.update(chunk)
    return digest.hexdigest()


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "tos" / "session-images"


@cache
def ensure_built(recipe: Recipe, log=print) -> SessionImage:
    """The image of `recipe`, from the cache or built now (about a minute, once per recipe).
    A lock keeps two deploys on this machine from building the same recipe at once."""
    if shutil.which("mmdebstrap") is None:
        raise ImageBuildError("mmdebstrap is not installed on this machine (the operator's): the deploy "
                              "builds the session image here", "apt install mmdebstrap")
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    entry = root / recipe.key()
    with open(root / f".{entry.name}.lock", "w") as lock:
        _wait_for_lock(lock)
        if not (entry / "image.json").exists():
            log(f"building the session image ({recipe.suite}) on this machine, once per recipe: {entry}")
            _build(recipe, entry)
    meta = json.loads((entry / "image.json").read_text())
    return SessionImage(entry / "rootfs.tar", meta["sha256"])


def _wait_for_lock(lock) -> None:
    """Polls, sleeping in between: pyinfra plans its hosts in gevent greenlets, and a blocking
    flock in one would stop the greenlet holding the lock from ever finishing its build."""
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            time.sleep(0.5)


def _build(recipe: Recipe, entry: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix=f".build-{entry.name}-", dir=entry.parent))
    try:
        tarball = work / "rootfs.tar"
        proc = subprocess.run(mmdebstrap_argv(recipe, tarball), capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, env={**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH})
        if proc.returncode != 0:
            raise ImageBuildError(f"mmdebstrap could not build the session image:\n{proc.stderr[-3000:]}",
                                  f"check that this machine reaches {recipe.mirror}"
                                  f"{' through ' + recipe.proxy if recipe.proxy else ''}, and that it runs "
                                  "as root or can use user namespaces (mmdebstrap --mode=unshare)")
        (work / "image.json").write_text(json.dumps(
            {"sha256": _sha256(tarball), "recipe": asdict(recipe)}, indent=2, sort_keys=True) + "\n")
        shutil.rmtree(entry, ignore_errors=True)
        work.replace(entry)
    finally:
        shutil.rmtree(work, ignore_errors=True)
