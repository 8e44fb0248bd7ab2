"""Whole-file writes for the node tool, and the time stamp the records it writes carry."""

import datetime
import os
import socket
from pathlib import Path


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def replace_file(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Writes beside, then renames: readers see the old or the new file, never half of one. The
    temporary name carries this host's name, so nodes writing on the share never share one;
    `mode` holds from the first byte (a private file is never briefly readable by others)."""
    tmp = path.with_name(f".{path.name}.{socket.gethostname()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
