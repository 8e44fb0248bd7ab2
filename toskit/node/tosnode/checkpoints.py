"""Checkpoint images on the tenant's volume: the hibernation state, manifests that prove a
checkpoint complete, and the runtime versions a checkpoint needs to restore.

Everything here lives in <volume>/checkpoints (root, 0700, encrypted with the volume):
    state.json              {"state": running | checkpointing | checkpointed, "checkpoint", "node", "since"}
    <name>/                 criu's images, as runc checkpoint (hibernation._checkpoint) wrote them
    <name>.manifest.json    sha256 of every image file, the session image, the runtime versions
"""

import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

from . import dockerapi
from .files import now, replace_file

# criu's own files without which no restore can start.
REQUIRED_IMAGES = ("inventory.img", "pstree.img")
# What must match between the node that checkpointed and the node that restores.
RESTORE_NEEDS_SAME = ("criu", "runc")


def runtime_versions() -> dict:
    def version(argv: list, pattern: str) -> str:
        proc = subprocess.run(argv, capture_output=True, text=True)
        found = re.search(pattern, proc.stdout)
        return found.group(1) if found else "unknown"
    return {
        "criu": version(["criu", "--version"], r"Version: (\S+)"),
        "runc": version(["runc", "--version"], r"runc version (\S+)"),
        "docker": dockerapi.call("GET", "/version").get("Version", "unknown"),  # no docker command's start-up
        "kernel": os.uname().release,
    }


def read_state(folder: Path) -> dict:
    try:
        return json.loads((folder / "state.json").read_text())
    except FileNotFoundError:
        return {"state": "running"}


def write_state(folder: Path, node: str, state: str, checkpoint: str | None = None) -> None:
    replace_file(folder / "state.json", (json.dumps(
        {"state": state, "checkpoint": checkpoint, "node": node, "since": now()}) + "\n").encode(), 0o600)
    fsync(folder)


def fsync(path: Path) -> None:
    """A file's data, or a folder's entries, through to storage."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _hash_from_storage(path: Path) -> str:
    """sha256 of the file as storage holds it: flushed, dropped from the page cache, read back.
    The read-back is asked for whole at once (WILLNEED), so storage delivers while this hashes."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
        digest = hashlib.sha256()
        while chunk := os.read(fd, 1 << 20):
            digest.update(chunk)
        return digest.hexdigest()
    finally:
        os.close(fd)


def flush(images: Path) -> None:
    """Every image written through to storage (criu leaves them in the page cache): the images are
    on storage once this returns; `seal` then reads them back from there."""
    for path in [*image_files(images), images]:
        fsync(path)


def image_files(images: Path) -> list:
    return sorted(p for p in images.rglob("*") if p.is_file())


def seal(folder: Path, name: str, image: str, versions: dict) -> dict:
    """Checks the checkpoint is complete and writes its manifest (last, atomically): a checkpoint
    without a manifest is unfinished and is never restored."""
    images = folder / name
    missing = [f for f in REQUIRED_IMAGES if not (images / f).is_file()]
    if missing or not list(images.glob("core-*.img")):
        raise ValueError(f"checkpoint {name} is incomplete (missing {', '.join(missing) or 'core-*.img'})")
    files = {str(p.relative_to(images)): _hash_from_storage(p) for p in image_files(images)}
    manifest = {"checkpoint": name, "image": image, "runtime": versions, "files": files,
                "bytes": sum((images / f).stat().st_size for f in files), "created": now()}
    replace_file(folder / f"{name}.manifest.json", (json.dumps(manifest, indent=1) + "\n").encode(), 0o600)
    fsync(folder)
    return manifest


def verify(folder: Path, name: str, image: str, versions: dict) -> str | None:
    """None if the checkpoint can be restored here, else why not."""
    try:
        manifest = json.loads((folder / f"{name}.manifest.json").read_text())
    except (OSError, ValueError):
        return f"checkpoint {name} has no readable manifest (it was never completed)"
    images = folder / name
    on_disk = {str(p.relative_to(images)) for p in image_files(images)} if images.is_dir() else set()
    if on_disk != set(manifest["files"]):
        return f"checkpoint {name} lacks or has extra files ({len(on_disk)} found, {len(manifest['files'])} expected)"
    for rel, digest in manifest["files"].items():
        if _hash_from_storage(images / rel) != digest:
            return f"checkpoint {name} is corrupt: {rel} does not match its sha256"
    if manifest["image"] != image:
        return f"the session image changed ({manifest['image']} then, {image} now)"
    for part in RESTORE_NEEDS_SAME:
        if manifest["runtime"][part] != versions[part]:
            return f"{part} changed ({manifest['runtime'][part]} then, {versions[part]} here)"
    return None
