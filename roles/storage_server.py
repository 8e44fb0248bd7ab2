"""storage_server: the NFS v4.2 server holding tenants' encrypted volume files.

It only ever stores ciphertext (the nodes encrypt), so least privilege here is about who may
reach the export and as whom: only the nodes' addresses, every client user squashed to one
unprivileged owner, NFS v4.2 alone (no v2/v3, so no mountd/statd protocols on the wire).
"""

from io import StringIO

from pyinfra import host, inventory
from pyinfra.api import deploy
from pyinfra.operations import apt, files, server, systemd

from toskit import operations
from toskit.defaults import ALL_DEFAULTS
from toskit.schema import DataError, RoleData
from toskit.schema.net import HostAddress, network_of
from toskit.schema.types import AccountName, NonEmpty, Optional, OwnedPath, PackageName, whole
from toskit.templating import TEMPLATES

# The data key listing this role's packages (deploy.py installs them all in one transaction).
PACKAGES_KEY = "storage_server_packages"

class Data(RoleData):
    # Packages of the NFS server.
    storage_server_packages: NonEmpty(PackageName) = ["nfs-kernel-server"]
    # Directory exported to the nodes; it holds one volume file per tenant.
    storage_server_export_path: OwnedPath = "/srv/tos/volumes"
    # The account every client's users are squashed to (all_squash): the only owner of the
    # export, created by the deploy (never an account the system already has). Fixed ids, because
    # the export options name them; pick ids unused on this host.
    storage_server_export_user: AccountName = "tos-volumes"
    storage_server_export_uid: whole(100, 65533) = 9500
    # Addresses allowed to mount the export; None: every host in the inventory's `nodes` group
    # (its cluster_ip).
    storage_server_export_clients: Optional[NonEmpty(HostAddress)] = None
    # nfsd threads.
    storage_server_nfsd_threads: whole(1, 256) = 8


DEFAULTS = Data.defaults()


def export_clients(configured, node_addresses: list) -> list:
    """storage_server_export_clients if set, else the nodes' cluster addresses,
    each as the network of that one address: 10.0.0.5/32, fd00::5/128."""
    addresses = configured if configured is not None else node_addresses
    return [network_of(address) for address in addresses]


@deploy("TOS storage server", data_defaults=ALL_DEFAULTS)
def storage_server():
    Data.check(host.name, host.data)
    data = host.data
    clients = export_clients(data.storage_server_export_clients,
                             [node.data.cluster_ip for node in inventory.get_group("nodes", [])])
    if not clients:
        raise DataError(host.name, "storage_server_export_clients", None,
                        "names no node, and the inventory has no `nodes` group",
                        "list the nodes' addresses in storage_server_export_clients")
    apt.packages(name="Install the NFS server", packages=data.storage_server_packages, no_recommends=True)
    server.group(name="Owner group of the export", group=data.storage_server_export_user, system=True,
                 gid=data.storage_server_export_uid)
    operations.system_account(data.storage_server_export_user,
                              "Owner of the export: every client user is squashed to it",
                              uid=data.storage_server_export_uid, group=data.storage_server_export_user)
    files.directory(name="The export, reachable by its owner only", path=data.storage_server_export_path,
                    user=data.storage_server_export_user, group=data.storage_server_export_user, mode="700")
    nfs_conf = operations.template(name="NFS v4.2 only", src=str(TEMPLATES / "nfs-tos.conf.j2"),
                                   dest="/etc/nfs.conf.d/tos.conf", mode="644")
    exports = operations.template(name="Export to the nodes only, all users squashed", src=str(TEMPLATES / "tos.exports.j2"),
                                  dest="/etc/exports.d/tos.exports", mode="644",
                                  clients=clients)
    # Debian's default /etc/exports exports nothing; keep it that way.
    operations.put(name="No other exports", src=StringIO("# TOS: exports live in /etc/exports.d/tos.exports\n"),
                   dest="/etc/exports", mode="644")
    systemd.service(name="Run the NFS server", service="nfs-server", running=True, enabled=True)
    systemd.service(name="Restart the NFS server for its new config", service="nfs-server", restarted=True,
                    _if=nfs_conf.did_change)
    server.shell(name="Publish the exports", commands=["exportfs -ra"], _if=exports.did_change)
