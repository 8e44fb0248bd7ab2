"""LUKS2 files opened as block devices: cryptsetup, loop devices and device-mapper, nothing about
whose file it is or where it is mounted (volumes.py)."""

import re
import subprocess
from pathlib import Path

from .errors import NodeError

MAPPER_PREFIX = "tos-vol-"
KEY_BYTES = 64


def run(argv: list, what: str, stdin: bytes | None = None) -> str:
    proc = subprocess.run(argv, input=stdin, capture_output=True)
    if proc.returncode != 0:
        raise NodeError(f"{what} failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout.decode()


def device(mapper: str) -> Path:
    """The block device of an open mapping: the plaintext side."""
    return Path(f"/dev/mapper/{mapper}")


def format_luks(file: Path, key: bytes, label: str, what: str) -> None:
    """Makes the file a LUKS2 container for the key (on stdin)."""
    run(["cryptsetup", "luksFormat", "--batch-mode", "--type", "luks2", "--cipher", "aes-xts-plain64",
         "--key-size", "512", "--hash", "sha256", "--sector-size", "4096",
         # The key is 512 random bits, not a passphrase: a slow KDF adds nothing but time.
         "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000",
         "--label", label, "--key-file=-", f"--keyfile-size={KEY_BYTES}", str(file)],
        f"formatting {what}", stdin=key)


def unlock(file: Path, mapper: str, key: bytes, what: str) -> None:
    """Opens the LUKS2 file as /dev/mapper/<mapper>, the key on stdin. The file goes through a
    loop device with direct I/O: no second copy of the ciphertext in the node's page cache, and
    nothing dirty left in the NFS client when the volume closes. No dm-crypt work queues: less
    CPU per byte (what bounds throughput under emulation, and costs a little everywhere)."""
    loop = run(["losetup", "--find", "--show", "--direct-io=on", str(file)], f"attaching {what}").strip()
    try:
        run(["cryptsetup", "open", "--type", "luks2", "--key-file=-", f"--keyfile-size={KEY_BYTES}",
             "--perf-no_read_workqueue", "--perf-no_write_workqueue", loop, mapper], f"unlocking {what}", stdin=key)
    except NodeError:
        run(["losetup", "--detach", loop], f"detaching {what}")
        raise


def lock(mapper: str, what: str) -> None:
    """Closes the mapping, then detaches the loop device under it."""
    table = run(["dmsetup", "deps", "-o", "devname", mapper], f"finding the device under {what}")
    run(["cryptsetup", "close", mapper], f"locking {what}")
    for loop in re.findall(r"\((loop[0-9]+)\)", table):
        run(["losetup", "--detach", f"/dev/{loop}"], f"detaching {what}")
