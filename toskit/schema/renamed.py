"""Keys that were renamed, old name -> new: the one table the unknown-key check reads.

Each key carries the name of the role that owns it (roles/<owner>.py), so a reader finds its type,
default and comment there. Data that still sets an old name is refused, naming the new one, before
any host is contacted: an old name is never read, and never silently ignored. Entries stay, so a
site upgrading from any earlier version is told.
"""

RENAMED_KEYS = {
    # issue 14: the owner's name, not the name of another role or of the tenants' data
    "session_hibernate_after": "hibernation_after",
    "session_idle_policy": "hibernation_idle_policy",
    "storage_export_path": "storage_server_export_path",
    "storage_export_user": "storage_server_export_user",
    "storage_export_uid": "storage_server_export_uid",
    "storage_export_clients": "storage_server_export_clients",
    "storage_nfsd_threads": "storage_server_nfsd_threads",
    "tenant_egress_default": "tenant_network_egress_default",
    "tenant_io_devices": "quotas_io_devices",
}
