"""sessions: the tenants' session image, built on each node, and the host-side `tos-session` tool.

The image is built from Debian packages on the node itself (no registry is reachable) and named
after a hash of its recipe, so it is rebuilt only when the recipe changes.
"""

import hashlib
import io
import json
import zipfile
from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.facts.docker import DockerImage
from pyinfra.operations import apt, files, server

from roles.hibernation import DEFAULTS as HIBERNATION_DEFAULTS
from roles.quotas import DEFAULTS as QUOTA_DEFAULTS
from roles.quotas import tenants_of
from toskit.schema import RoleData
from toskit.schema.types import Literal, NonEmpty, PackageName
from toskit.tenants import parse_duration

NODE_PROGRAMS = Path(__file__).resolve().parents[1] / "toskit" / "node"
IMAGE_FILES = ["tos-session-agent", "tos-session-ctl", "tos-probe", "tos-app"]

# The data key listing this role's packages (deploy.py installs them all in one transaction).
PACKAGES_KEY = "session_build_packages"

class Data(RoleData):
    # Debian suite the session image is built from.
    session_image_suite: Literal["trixie", "bookworm"] = "trixie"
    # What the node needs to build images and run the session tool.
    session_build_packages: NonEmpty(PackageName) = ["mmdebstrap", "python3"]


DEFAULTS = Data.defaults()


def image_tag(suite: str) -> str:
    """tos-session:<hash of everything that goes into the image>."""
    digest = hashlib.sha256(suite.encode())
    for path in [NODE_PROGRAMS / "build-session-image", *(NODE_PROGRAMS / "session_image" / f for f in IMAGE_FILES)]:
        digest.update(path.read_bytes())
    return f"tos-session:{digest.hexdigest()[:12]}"


def tool_bundle() -> bytes:
    """tos-session as one executable zip (zipapp): a shebang, then tosnode/ and a __main__.

    One file to upload and compare instead of one per module; built with fixed timestamps and
    order, so the same sources always give the same bytes (and the deploy stays a no-op)."""
    buffer = io.BytesIO()
    buffer.write(b"#!/usr/bin/python3\n")
    with zipfile.ZipFile(buffer, "a", zipfile.ZIP_DEFLATED) as bundle:
        entries = [("__main__.py", b"import sys\nfrom tosnode.cli import main\nsys.exit(main())\n")]
        entries += [(f"tosnode/{p.name}", p.read_bytes()) for p in sorted((NODE_PROGRAMS / "tosnode").glob("*.py"))]
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            bundle.writestr(info, data)
    return buffer.getvalue()


def tenants_json(tenants: list, image: str, hibernate_after: int) -> str:
    """/etc/tos/tenants.json: what tos-session needs to know of each tenant."""
    return json.dumps({"image": image, "tenants": [
        {"id": t.id, "slice": t.slice, "network": t.network, "cpu": t.quotas.cpu,
         "memory": t.quotas.memory, "swap": t.quotas.swap, "pids": t.quotas.pids,
         "volume_size": t.quotas.volume_size, "hibernate_after": t.hibernate_after or hibernate_after}
        for t in tenants]}, indent=2, sort_keys=True) + "\n"


# The session tool needs the tenants, whose defaults the quotas and hibernation roles own.
@deploy("TOS sessions", data_defaults={**QUOTA_DEFAULTS, **HIBERNATION_DEFAULTS, **DEFAULTS})
def sessions():
    Data.check(host.name, host.data)
    tag = image_tag(host.data.session_image_suite)
    apt.packages(name="Install the session image builder and the tool's Python",
                 packages=host.data.session_build_packages, no_recommends=True)
    files.directory(name="Session image sources", path="/usr/local/lib/tos/session-image",
                    user="root", group="root", mode="755")
    for name in host.loop(IMAGE_FILES):
        files.put(name=f"Session image file {name}", src=str(NODE_PROGRAMS / "session_image" / name),
                  dest=f"/usr/local/lib/tos/session-image/{name}", user="root", group="root", mode="755")
    files.put(name="Session image builder", src=str(NODE_PROGRAMS / "build-session-image"),
              dest="/usr/local/lib/tos/build-session-image", user="root", group="root", mode="755")
    if not host.get_fact(DockerImage, object_id=tag):
        # Asked again when it runs: a deploy that repairs Docker's userns-remap first (runtime role)
        # finds the image the plan, made against the unremapped daemon, could not see.
        server.shell(name=f"Build the session image {tag} (a few minutes, once per recipe)",
                     commands=[f"docker image inspect {tag} > /dev/null 2>&1 || "
                               f"/usr/local/lib/tos/build-session-image {tag} {host.data.session_image_suite}"])

    files.directory(name="/etc/tos", path="/etc/tos", user="root", group="root", mode="755")
    files.put(name="Tenants the session tool may start", src=StringIO(tenants_json(
        tenants_of(host.name, host.data), tag,
        parse_duration(host.name, "session_hibernate_after", host.data.session_hibernate_after))),
              dest="/etc/tos/tenants.json", user="root", group="root", mode="644")
    files.directory(name="No loose copy of tos-session's library (it is inside the tool)",
                    path="/usr/local/lib/tos/tosnode", present=False)
    files.put(name="Install tos-session", src=io.BytesIO(tool_bundle()), dest="/usr/local/sbin/tos-session",
              user="root", group="root", mode="755")
