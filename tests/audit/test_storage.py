"""Tenant storage: the NFS export, the nodes' share, their Vault credential, and proof that a
session's data reaches only its encrypted volume (nowhere in plain on a node's or the storage
host's disk)."""

import ipaddress
import secrets

import pytest
from vault_credential import assert_in_ram_for_root_only


# ---- the storage host
@pytest.mark.groups("storage")
@pytest.mark.control("tos-storage-01")
def test_nfs_server_speaks_v4_2_only(host):
    assert host.service("nfs-server").is_running
    versions = host.file("/proc/fs/nfsd/versions").content_string.split()
    assert "+4.2" in versions and "-3" in versions and "-4.0" in versions, versions


@pytest.mark.groups("storage")
@pytest.mark.control("tos-storage-02")
def test_export_reaches_only_the_nodes_with_every_user_squashed(host, target, targets):
    path = target.data["storage_server_export_path"]
    clients = {}
    for line in host.check_output("exportfs -s").splitlines():  # "path  client(options)", one per client
        exported, entry = line.split()
        assert exported == path, line
        client, options = entry.split("(", 1)
        clients[client] = set(options.rstrip(")").split(","))
    # Only the configured clients, else each node's own address (one address each: /32, /128).
    wanted = target.data["storage_server_export_clients"]
    if wanted is None:
        wanted = [t.data["cluster_ip"] for t in targets if "nodes" in t.groups]
    assert set(clients) == {str(ipaddress.ip_network(address)) for address in wanted}
    for options in clients.values():
        assert {"rw", "sync", "all_squash", "root_squash", "secure", "sec=sys", "no_subtree_check",
                f"anonuid={target.data['storage_server_export_uid']}"} <= options
        assert not options & {"no_root_squash", "insecure", "no_all_squash", "crossmnt", "nohide"}
    export = host.file(path)
    assert (export.user, export.mode) == (target.data["storage_server_export_user"], 0o700)


# ---- the nodes
@pytest.mark.groups("nodes")
@pytest.mark.control("tos-storage-03")
def test_share_is_nfs_4_2_without_exec_suid_or_devices(host, target):
    share = target.data["storage_mount_path"]
    host.check_output(f"ls {share}/")  # mounted on first use
    fstype, options = host.check_output(f"findmnt -n -o FSTYPE,OPTIONS {share} | tail -1").split()
    assert fstype == "nfs4"
    assert {"vers=4.2", "hard", "nosuid", "nodev", "noexec"} <= set(options.split(","))


@pytest.mark.groups("nodes")
@pytest.mark.control("tos-vault-01")
def test_node_holds_its_vault_credential_in_ram_only(host):
    assert_in_ram_for_root_only(host, "tos-session vault-check", "/run/tos/vault")


@pytest.mark.groups("nodes")
@pytest.mark.control("tos-storage-04")
def test_session_home_is_the_tenants_luks2_volume_on_the_share(host, target, pair):
    tenant = pair[0]
    home = f"{target.data['storage_volume_root']}/{tenant}/home"
    source, fstype = host.check_output(f"findmnt -n -o SOURCE,FSTYPE -T {home}").split()
    assert (source, fstype) == (f"/dev/mapper/tos-vol-{tenant}", "ext4")
    status = host.check_output(f"cryptsetup status tos-vol-{tenant}")
    assert "type:    LUKS2" in status and "cipher:  aes-xts-plain64" in status
    assert f"{target.data['storage_mount_path']}/{tenant}.luks" in host.check_output(
        f"losetup -n -O BACK-FILE $(cryptsetup status tos-vol-{tenant} | awk '/device:/ {{print $2}}')")
    assert host.check_output(f"cryptsetup luksDump {target.data['storage_mount_path']}/{tenant}.luks "
                             f"| awk '/^Version:/ {{print $2}}'") == "2"


def found_in(host, files_command: str, *needles: str) -> set:
    """Which needles occur in the files `files_command` lists (NUL-separated). grep -z splits at
    NULs rather than line breaks: a sparse volume file is then many short lines, not one huge one."""
    patterns = " ".join(f"-e {n}" for n in needles)
    result = host.run(f"{files_command} | xargs -0 -r grep -z -a -o -h -F {patterns} | tr '\\0' '\\n' | sort -u")
    assert result.rc == 0, result.stderr
    return set(result.stdout.split())


@pytest.mark.groups("nodes")
@pytest.mark.control("tos-storage-05")
def test_data_written_in_a_session_is_nowhere_in_plain_on_the_node_or_the_storage_host(
        host, target, pair, host_named, targets):
    """A fresh marker goes into the session's home, a control marker onto the node's own disk (a
    scan that finds nothing must still find that). Every file of the node's disk and of the
    export written since is then searched (the marker, made after the stamp, can be in no other). (The lab tests also scan the raw disks.)"""
    tenant = pair[0]
    marker, control = f"TOSMARK{secrets.token_hex(12)}", f"TOSCTRL{secrets.token_hex(12)}"
    storage_hosts = [(t, host_named(t.name)) for t in targets if "storage" in t.groups]
    stamp = f"/run/tos-audit-stamp-{target.name}"  # the storage host is shared by the nodes' audits
    for _, server in [(target, host)] + storage_hosts:
        server.check_output(f"touch {stamp}")
    # Markers travel on stdin through shell builtins: no process's argv ever holds them.
    host.check_output(f"printf %s {marker} | docker exec -i --user session tos-session-{tenant} "
                      f"sh -c 'cat > ~/audit-marker && sync'")
    assert host.check_output(f"docker exec --user session tos-session-{tenant} cat /home/session/audit-marker") == marker
    host.check_output(f"printf %s {control} > /var/tmp/tos-audit-control && sync && sync")  # 2nd: loop -> NFS
    try:
        written_since = f"find / -xdev -type f -newer {stamp} -print0"
        assert found_in(host, written_since, marker, control) == {control}
        for storage, server in storage_hosts:
            export = storage.data["storage_server_export_path"]
            # The write reached the storage host (as ciphertext), so the search below is not vacuous.
            # A marker made after the stamp can only be in a file written after it.
            assert server.check_output(f"find {export} -name {tenant}.luks -newer {stamp}")
            assert found_in(server, f"find {export} -type f -newer {stamp} -print0", marker) == set()
    finally:
        for _, server in [(target, host)] + storage_hosts:
            server.run(f"rm -f {stamp}")
        host.run("rm -f /var/tmp/tos-audit-control")
        host.run(f"docker exec --user session tos-session-{tenant} rm -f /home/session/audit-marker")
