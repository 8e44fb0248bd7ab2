"""Programs shipped to hosts as one executable zip (zipapp): one file to upload and compare.

Built with fixed timestamps and order, so the same sources always give the same bytes (and a
deploy with nothing new uploads nothing).
"""

import io
import zipfile
from pathlib import Path


def zipapp(main: bytes, package: str, folder: Path, patterns=("*.py",)) -> bytes:
    """A shebang, `__main__.py` (`main`), then the files of `folder` matching `patterns` (searched
    recursively) as the package `package`."""
    entries = [("__main__.py", main)]
    for pattern in patterns:
        entries += [(f"{package}/{p.relative_to(folder).as_posix()}", p.read_bytes())
                    for p in sorted(folder.rglob(pattern)) if "__pycache__" not in p.parts]
    buffer = io.BytesIO()
    buffer.write(b"#!/usr/bin/python3\n")
    with zipfile.ZipFile(buffer, "a", zipfile.ZIP_DEFLATED) as bundle:
        for name, data in sorted(set(entries), key=lambda e: (e[0] != "__main__.py", e[0])):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            bundle.writestr(info, data)
    return buffer.getvalue()
