"""quotas: one systemd slice per tenant carrying its limits (its network: roles/tenant_network.py).

Tenants are declared in group_data (`tenants`), each with optional `quotas` that override
`tenant_quota_defaults`. Every default is documented here.
"""

from pyinfra import host
from pyinfra.api import QuoteString, StringCommand, deploy
from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

from toskit import operations
from toskit.facts import CgroupLimits, ContainerDisk
from toskit.schema.types import DevicePath, NonEmpty, Optional
from toskit.templating import TEMPLATES
from toskit.defaults import ALL_DEFAULTS
from toskit.tenants import TenantsData, tenants_of


class Data(TenantsData):  # `tenants` and `tenant_quota_defaults` (toskit/tenants.py), checked here
    # Disks the IO limits apply to; None: the disk holding /var/lib (found on the host).
    quotas_io_devices: Optional[NonEmpty(DevicePath)] = None


DEFAULTS = Data.defaults()


@deploy("TOS quotas", data_defaults=ALL_DEFAULTS)
def quotas():
    Data.check(host.name, host.data)
    tenants = tenants_of(host.name, host.data)
    io_devices = host.data.quotas_io_devices or [host.get_fact(ContainerDisk)]
    unit_changes = []
    for tenant in host.loop(tenants):
        unit = f"/etc/systemd/system/{tenant.slice}"
        unit_changes.append(operations.template(
            name=f"Slice of tenant {tenant.id}: its quotas",
            src=str(TEMPLATES / "tenant.slice.j2"), dest=unit,
            mode="644", tenant=tenant, io_devices=io_devices,
        ))
        # Enabled (what `systemctl enable` links): slices.target wants it, so it is up from boot
        # and never garbage-collected while empty.
        unit_changes.append(files.link(
            name=f"Enable tenant {tenant.id}'s slice",
            path=f"/etc/systemd/system/slices.target.wants/{tenant.slice}", target=unit,
        ))
    if unit_changes:
        systemd.daemon_reload(name="Load the tenants' slices (applies changed limits)",
                              _if=any_changed(*unit_changes))
    # host.loop names each tenant's operations apart: which of them a host gets depends on its state.
    for tenant in host.loop(tenants):
        _activate_or_restore_limits(tenant, io_devices)


def expected_limits(tenant, live: dict) -> dict:
    """What the kernel's cgroup files of the tenant's slice must say (cgroup v2 formats); io.max
    per device number, the host's disks and, while it is open, the tenant's volume (whose limits
    the node tool sets when it opens it)."""
    q = tenant.quotas
    io = dict.fromkeys(live["disks"].values(), f"rbps={q.disk_read} wbps={q.disk_write}")
    if live["volume"]:
        io[live["volume"]] = f"rbps={q.volume_read} wbps={q.volume_write}"
    return {
        "memory.max": str(q.memory),
        "memory.swap.max": str(q.swap),
        "pids.max": str(q.pids),
        "cpu.max": f"{round(q.cpu * 100) * 1000} 100000",
        "io": io,
    }


def drifted(live: dict, expected: dict) -> list:
    """Names of the limits whose live value differs from the declared one. Lines for other
    devices are left alone (a closed volume's old loop device: nothing of the tenant's uses it)."""
    wrong = [name for name, value in expected.items() if name != "io" and live.get(name) != value]
    return wrong + (["io.max"] if any(live["io"].get(d) != v for d, v in expected["io"].items()) else [])


def _activate_or_restore_limits(tenant, io_devices: list) -> None:
    """Starts the slice if it is not active. If it is, and someone lifted a limit by hand
    (systemctl set-property, a write to the cgroup file), the slice's unit file is unchanged:
    put the declared limits back on the live slice."""
    live = host.get_fact(CgroupLimits, path=cgroup_path(tenant), disks=tuple(io_devices), volume=tenant.volume_device)
    if live is None:
        server.shell(name=f"Activate tenant {tenant.id}'s slice", commands=[f"systemctl start {tenant.slice}"])
        return
    wrong = drifted(live, expected_limits(tenant, live))
    if wrong:
        q = tenant.quotas
        properties = [f"CPUQuota={round(q.cpu * 100)}%", f"MemoryMax={q.memory}",
                      f"MemorySwapMax={q.swap}", f"TasksMax={q.pids}"]
        rates = [(device, q.disk_read, q.disk_write) for device in io_devices]
        if live["volume"]:
            rates.append((tenant.volume_device, q.volume_read, q.volume_write))
        for device, read, write in rates:
            properties += [f"IOReadBandwidthMax={device} {read}", f"IOWriteBandwidthMax={device} {write}"]
        server.shell(
            name=f"Restore tenant {tenant.id}'s drifted limits ({', '.join(wrong)})",
            commands=[StringCommand("systemctl", "set-property", "--runtime", tenant.slice,
                                    *(QuoteString(p) for p in properties))],
        )


def cgroup_path(tenant) -> str:
    # systemd nests slices by the dashes in their names: tos.slice/tos-tenant.slice/...
    return f"/sys/fs/cgroup/tos.slice/tos-tenant.slice/{tenant.slice}"
