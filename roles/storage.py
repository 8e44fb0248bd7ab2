"""storage: what a node needs for tenants' encrypted volumes: the NFS share, LUKS and ext4 tools,
and /etc/tos/node.json for `tos-session volume ...` (toskit/node/tosnode/volumes.py does the rest,
on demand: volumes are created, opened and closed by sessions, never by the deploy).
"""

import json
from io import StringIO
from typing import Annotated

from pyinfra import host, inventory
from pyinfra.api import deploy
from pyinfra.operations import apt, files, systemd
from pyinfra.operations.util import any_changed

from toskit import operations
from toskit.defaults import ALL_DEFAULTS
from toskit.facts import VolumeSizes
from toskit.schema import DataError, RoleData
from toskit.schema.net import Address
from toskit.schema.types import MountOption, NonEmpty, Optional, OwnedPath, PackageName, excluding, including
from toskit.session_image import SESSION_UID
from toskit.templating import TEMPLATES
from toskit.tenants import tenants_of


# The data key listing this role's packages (deploy.py installs them all in one transaction).
PACKAGES_KEY = "storage_packages"

class Data(RoleData):
    # The NFS server; None: the first host of the inventory's `storage` group (its cluster_ip).
    storage_nfs_server: Optional[Address] = None
    # Where nodes mount the export. Mounted on first use (automount), so a slow storage host
    # never holds up a node's boot.
    storage_mount_path: OwnedPath = "/var/lib/tos/share"
    # NFS mount options: v4.2 over TCP; `hard` so a storage outage pauses IO rather than
    # corrupting an ext4 inside a volume; nothing on the share is executed or a device.
    # These four are the baseline: a list without them is refused (suid, exec, dev and soft too).
    storage_nfs_options: Annotated[NonEmpty(MountOption), including("vers=4.2", "hard", "nosuid", "nodev", "noexec"),
                                   excluding("suid", "exec", "dev", "soft", "sec=none", "proto=udp")] = [
        "vers=4.2", "proto=tcp", "hard", "timeo=150", "retrans=3", "nosuid", "nodev", "noexec"]
    # Where opened volumes are mounted: under /run, so only mount points, never data, are local.
    storage_volume_root: OwnedPath = "/run/tos/volumes"
    # Tools: NFS client, cryptsetup (LUKS2), mkfs.ext4.
    storage_packages: NonEmpty(PackageName) = ["nfs-common", "cryptsetup-bin", "e2fsprogs"]


DEFAULTS = Data.defaults()


def nfs_source(data) -> str:
    """server:path of the export: storage_nfs_server with this host's storage_server_export_path,
    else the storage host's own cluster_ip and export path (what it really exports). IPv6 in
    brackets."""
    if data.storage_nfs_server:
        server, path = data.storage_nfs_server, data.storage_server_export_path
    else:
        servers = inventory.get_group("storage", [])
        if not servers:
            raise DataError(host.name, "storage_nfs_server", None, "is unset and the inventory has no "
                            "`storage` group", "set storage_nfs_server to the NFS server's address")
        server = servers[0].data.cluster_ip
        path = servers[0].data.get("storage_server_export_path") or ALL_DEFAULTS["storage_server_export_path"]
    return f"[{server}]:{path}" if ":" in server else f"{server}:{path}"


def mount_unit(path: str) -> str:
    """systemd's name for the mount unit of a path (`systemd-escape --path --suffix=mount`), for the
    paths the schema allows (letters, digits and . _ - :): '/' becomes '-', a '-' and a leading '.'
    are escaped."""
    name = path.strip("/").replace("-", "\\x2d").replace("/", "-")
    return ("\\x2e" + name[1:] if name.startswith(".") else name) + ".mount"


def node_json(data) -> str:
    return json.dumps({
        "node": host.name, "share": data.storage_mount_path, "share_unit": mount_unit(data.storage_mount_path),
        "mount_root": data.storage_volume_root, "session_uid": data.docker_subid_start + SESSION_UID,
    }, indent=2, sort_keys=True) + "\n"


def check_volume_sizes(tenants, sizes: dict) -> None:
    """Volumes never shrink: a size below an existing volume is refused before anything changes."""
    for index, tenant in enumerate(tenants):
        existing = sizes.get(tenant.id)
        if existing and tenant.quotas.volume_size < existing:
            raise DataError(host.name, f"tenants[{index}].quotas.volume_size", tenant.quotas.volume_size,
                                     f"is smaller than tenant {tenant.id}'s existing volume ({existing // 2**20}M); "
                                     f"volumes never shrink", f"set it to at least {existing // 2**20}M")


@deploy("TOS storage", data_defaults=ALL_DEFAULTS)
def storage():
    Data.check(host.name, host.data)
    data = host.data
    tenants = tenants_of(host.name, data)
    check_volume_sizes(tenants, host.get_fact(VolumeSizes, path=data.storage_mount_path) or {})
    apt.packages(name="Install the NFS client, cryptsetup and mkfs.ext4", packages=data.storage_packages,
                 no_recommends=True)
    unit = mount_unit(data.storage_mount_path)
    source = nfs_source(data)
    units = [operations.template(name=f"Share unit {name}", src=str(TEMPLATES / f"tos-share.{kind}.j2"),
                                 dest=f"/etc/systemd/system/{name}", mode="644", source=source)
             for kind, name in (("mount", unit), ("automount", unit.replace(".mount", ".automount")))]
    systemd.daemon_reload(name="Load the share's units", _if=any_changed(*units))
    systemd.service(name="Mount the share on first use", service=unit.replace(".mount", ".automount"),
                    running=True, enabled=True)
    files.directory(name="/etc/tos", path="/etc/tos", user="root", group="root", mode="755")
    operations.put(name="Storage settings of tos-session", src=StringIO(node_json(data)), dest="/etc/tos/node.json",
                   mode="644")
