"""sessions: the tenants' session image on every node, and the host-side `tos-session` tool.

The image is built once, on the operator's machine (toskit/session_image.py: no registry is
reachable, and nodes building their own drifted apart), named by the sha256 of its bytes, and
uploaded to a node only when the node lacks it.
"""

import io
import json
from io import StringIO

from pyinfra import host, logger
from pyinfra.api import deploy
from pyinfra.facts.docker import DockerImage
from pyinfra.operations import apt, files, server

from toskit import operations
from toskit.bundle import zipapp
from toskit.defaults import ALL_DEFAULTS
from toskit.schema import RoleData
from toskit.schema.net import MirrorUrl
from toskit.schema.types import DurationText, Literal, NonEmpty, Optional, PackageName
from toskit.session_image import NODE_PROGRAMS, Recipe, SessionImage, ensure_built
from toskit.tenants import parse_duration, tenants_of

# The data key listing this role's packages (deploy.py installs them all in one transaction).
PACKAGES_KEY = "session_tool_packages"
# Where a node keeps the tarball between its upload and its import.
STAGED_IMAGE = "/var/tmp/tos-session-image.tar"
# [CIS Docker 4.6] The image's health check: the agent's own verdict (tos-session-health), as
# Docker records it (seconds in ns, fields in Docker's order). Its interval is Docker's default;
# each session runs with its tenant's health_interval, else the site's session_health_interval.
HEALTHCHECK = {"Test": ["CMD", "/usr/local/bin/tos-session-health"], "Interval": 30 * 10**9,
               "Timeout": 10 * 10**9, "StartPeriod": 60 * 10**9, "Retries": 3}


def healthcheck_instruction() -> str:
    """HEALTHCHECK as `docker import --change` takes it."""
    h = HEALTHCHECK
    return (f"HEALTHCHECK --interval={h['Interval'] // 10**9}s --timeout={h['Timeout'] // 10**9}s "
            f"--start-period={h['StartPeriod'] // 10**9}s --retries={h['Retries']} CMD {json.dumps(h['Test'][1:])}")


def imported_as_built(found: list) -> bool:
    """The image's inspect (DockerImage fact) shows it imported with today's settings."""
    return bool(found) and found[0]["Config"].get("Healthcheck") == HEALTHCHECK


class Data(RoleData):
    # Debian suite of the session image.
    session_image_suite: Literal["trixie", "bookworm"] = "trixie"
    # The Debian mirror the operator's machine builds the session image from.
    session_image_mirror: MirrorUrl = "http://deb.debian.org/debian"
    # The mirror of Debian's security updates for the image (None: no security suite).
    session_image_security_mirror: Optional[MirrorUrl] = "http://deb.debian.org/debian-security"
    # An http proxy (such as a package cache) for that build; None: direct.
    session_image_proxy: Optional[MirrorUrl] = None
    # What the node needs to run the session tool.
    session_tool_packages: NonEmpty(PackageName) = ["python3"]
    # [CIS Docker 5.27] How often Docker runs each session's health probe (a `docker exec` of
    # tos-session-health), unless its tenant sets 'health_interval'. Paused and hibernating sessions
    # are not probed.
    session_health_interval: DurationText(3600) = "30s"
    # [TOS] A drained node takes no new session: tos-session refuses to start or restore one that
    # is not already here; sessions here keep running, and hibernate away as usual. Set it before
    # maintenance or a node's retirement (the broker places no session on a drained node either).
    session_node_drained: bool = False


DEFAULTS = Data.defaults()


def session_image(data) -> SessionImage:
    """The cluster's session image (built on this machine the first time a recipe is deployed)."""
    return ensure_built(Recipe(data.session_image_suite, data.session_image_mirror,
                               data.session_image_security_mirror, data.session_image_proxy), log=logger.warning)


def import_command(image: SessionImage) -> str:
    """Imports the uploaded tarball unless the image is there with today's settings (its health
    check); an image whose layer is not the tarball that was built (a damaged upload) is removed
    again, and the deploy fails."""
    tag, staged = image.tag, STAGED_IMAGE
    health = json.dumps(HEALTHCHECK, separators=(",", ":"))
    return (f"if [ \"$(docker image inspect -f '{{{{json .Config.Healthcheck}}}}' {tag} 2>/dev/null)\" != '{health}' ]; then "
            f"docker import --change 'USER session' --change 'WORKDIR /home/session' "
            f"--change 'ENV HOME=/home/session' --change '{healthcheck_instruction()}' {staged} {tag} > /dev/null && "
            f"layer=$(docker image inspect -f '{{{{index .RootFS.Layers 0}}}}' {tag}) && "
            f"if [ \"$layer\" != {image.layer} ]; then docker image rm {tag}; "
            f"echo \"imported layer $layer is not the image built ({image.layer})\" >&2; exit 1; fi; "
            f"fi; rm -f {staged}")


def tool_bundle() -> bytes:
    """tos-session as one executable zip: tosnode/ and a __main__ (toskit/node/launcher.py: root's
    calls run from bytecode kept once per version)."""
    return zipapp((NODE_PROGRAMS / "launcher.py").read_bytes(), "tosnode", NODE_PROGRAMS / "tosnode")


def tenants_json(tenants: list, image: str, hibernate_after: int, health_interval: int = 30,
                 drained: bool = False) -> str:
    """/etc/tos/tenants.json: what tos-session needs to know of each tenant (a tenant's own
    hibernate_after and health_interval, else the site's), and whether this node is drained."""
    return json.dumps({"image": image, "drained": drained, "tenants": [
        {"id": t.id, "slice": t.slice, "network": t.network, "cpu": t.quotas.cpu,
         "memory": t.quotas.memory, "swap": t.quotas.swap, "pids": t.quotas.pids,
         "volume_size": t.quotas.volume_size, "volume_read": t.quotas.volume_read,
         "volume_write": t.quotas.volume_write, "hibernate_after": t.hibernate_after or hibernate_after,
         "health_interval": t.health_interval or health_interval}
        for t in tenants]}, indent=2, sort_keys=True) + "\n"


# The session tool needs the tenants and hibernation_after (the hibernation role's).
@deploy("TOS sessions", data_defaults=ALL_DEFAULTS)
def sessions():
    Data.check(host.name, host.data)
    image = session_image(host.data)
    apt.packages(name="Install the session tool's Python", packages=host.data.session_tool_packages,
                 no_recommends=True)
    files.directory(name="No node-side image builder (the operator's machine builds the image)",
                    path="/usr/local/lib/tos/session-image", present=False)
    files.file(name="No node-side image build script", path="/usr/local/lib/tos/build-session-image",
               present=False)
    if not imported_as_built(host.get_fact(DockerImage, object_id=image.tag)):
        operations.put(name=f"Upload the session image {image.tag}", src=str(image.tarball), dest=STAGED_IMAGE,
                       mode="600")
        # Asked again when it runs: a deploy that repairs Docker's userns-remap first (runtime role)
        # finds the image the plan, made against the unremapped daemon, could not see.
        server.shell(name=f"Import the session image {image.tag}", commands=[import_command(image)])

    files.directory(name="/etc/tos", path="/etc/tos", user="root", group="root", mode="755")
    operations.put(name="Tenants the session tool may start", src=StringIO(tenants_json(
        tenants_of(host.name, host.data), image.tag,
        parse_duration(host.name, "hibernation_after", host.data.hibernation_after),
        parse_duration(host.name, "session_health_interval", host.data.session_health_interval),
        host.data.session_node_drained)),
                   dest="/etc/tos/tenants.json", mode="644")
    files.directory(name="No copy of tos-session's library from before it was one file",
                    path="/usr/local/lib/tos/tosnode", present=False)
    operations.put(name="Install tos-session", src=io.BytesIO(tool_bundle()), dest="/usr/local/sbin/tos-session",
                   mode="755")
