"""Tenants' encrypted volumes: one LUKS2 file per tenant on the NFS share, ext4 inside.

On the share, per tenant:
    <tenant>.luks        the volume (ciphertext only: the wire and the storage host never see more)
    <tenant>.key.json    its key, wrapped by the tenant's transit key in Vault (useless without Vault)
    <tenant>.lease       which node has it open (an ext4 mounted twice is destroyed)
    .<tenant>.lock       NFSv4 lock serialising create/open/rotate between nodes
Opened, it is mounted at /run/tos/volumes/<tenant>: home/ (the session's home, owned by the
session user's host uid) and checkpoints/ (root only: the session must never touch what gets restored).

Safety rules: a volume file is created under a temporary name and renamed only once formatted,
so an existing <tenant>.luks is never formatted again; Vault is asked before anything is
written, so when Vault is unreachable nothing changes; the key goes to cryptsetup on stdin.
The cryptsetup, loop device and device-mapper steps are in luks.py.
"""

import fcntl
import json
import os
from contextlib import contextmanager
from pathlib import Path

from .errors import NodeError
from .files import now, replace_file
from .luks import MAPPER_PREFIX, device, format_luks, lock, run, unlock
from .nodeconfig import NodeConfig
from .vaultclient import NodeVault, wrapped_version


class Volume:
    def __init__(self, node: NodeConfig, tenant: dict):
        self.node = node
        self.tenant = tenant["id"]
        self.size = tenant["volume_size"]
        self.slice = tenant["slice"]
        self.rates = {"IOReadBandwidthMax": tenant.get("volume_read"), "IOWriteBandwidthMax": tenant.get("volume_write")}
        share = node.share
        self.file = share / f"{self.tenant}.luks"
        self.keyfile = share / f"{self.tenant}.key.json"
        self.leasefile = share / f"{self.tenant}.lease"
        self.lockfile = share / f".{self.tenant}.lock"
        self.mapper = MAPPER_PREFIX + self.tenant
        self.mountpoint = node.mount_root / self.tenant

    @property
    def home(self) -> Path:
        return self.mountpoint / "home"

    @property
    def checkpoints(self) -> Path:
        return self.mountpoint / "checkpoints"

    # ---- state
    def is_open(self) -> bool:
        return device(self.mapper).exists()

    def is_mounted(self) -> bool:
        return os.path.ismount(self.mountpoint)

    def lease(self) -> dict | None:
        try:
            return json.loads(self.leasefile.read_text())
        except FileNotFoundError:
            return None

    def wrapped_key(self) -> dict:
        return json.loads(self.keyfile.read_text())

    def status(self) -> dict:
        exists = self.file.exists()
        lease = self.lease()
        return {
            "tenant": self.tenant, "exists": exists,
            "size": self.file.stat().st_size if exists else None,
            "key_version": wrapped_version(self.wrapped_key()["wrapped_key"]) if exists else None,
            "open_here": self.is_open(),
            "leased_by": lease["node"] if lease else None,
        }

    # ---- guards
    def _require_share(self) -> None:
        if not os.path.ismount(self.node.share):
            raise NodeError(f"the volume share is not mounted at {self.node.share}: "
                            f"check the storage host and `systemctl status {self.node.share_unit}`")

    @contextmanager
    def _locked(self):
        """An NFSv4 byte-range lock on the share: one node at a time creates, opens or rewraps."""
        fd = os.open(self.lockfile, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _check_lease(self, take_over: bool) -> None:
        lease = self.lease()
        if lease is None or lease["node"] == self.node.name or take_over:
            # Our own lease with nothing open here: this node restarted (or was rebuilt) while the
            # volume was open; nobody else can have it, so it is ours again.
            return
        raise NodeError(f"volume {self.tenant} is open on {lease['node']} (since {lease['since']}): "
                        f"close it there (`tos-session stop {self.tenant}`); if {lease['node']} is gone for "
                        f"good, open it here with `tos-session volume open {self.tenant} --take-over`")

    # ---- transitions
    def open(self, take_over: bool = False) -> str:
        if self.is_mounted():
            self._limit_rates()  # a tool from before the limit opened it, perhaps
            return f"{self.tenant}: volume already open at {self.mountpoint}"
        self._require_share()
        with self._locked():
            self._check_lease(take_over)
            with NodeVault(self.node.vault) as vault:  # fails closed before anything changes
                if self.file.exists():
                    existing = self.file.stat().st_size
                    key = vault.unwrap_volume_key(self.tenant, self.wrapped_key()["wrapped_key"])
                    created = False
                else:
                    key = self._create(vault)
                    created = True
            self.leasefile.write_text(json.dumps({"node": self.node.name, "since": now()}) + "\n")
            try:
                if not self.is_open():
                    unlock(self.file, self.mapper, key, f"volume {self.tenant}")
                self._limit_rates()
                self._mount()
            except Exception:
                self._teardown()
                raise
        if created:
            return f"{self.tenant}: volume created ({self.size // 2**20} MiB) and opened at {self.mountpoint}"
        note = "" if existing >= self.size else \
            f" (it is {existing // 2**20} MiB, smaller than the configured {self.size // 2**20} MiB: not grown)"
        return f"{self.tenant}: volume opened at {self.mountpoint}{note}"

    def _create(self, vault: NodeVault) -> bytes:
        """Formats a new volume under a temporary name; only a complete one gets the real name."""
        key, wrapped = vault.new_volume_key(self.tenant)
        pending = self.file.with_name(self.file.name + ".new")
        pending.unlink(missing_ok=True)  # a crashed earlier attempt: it never held data
        with open(pending, "wb") as f:
            f.truncate(self.size)
        mapper = self.mapper + "-new"
        format_luks(pending, key, f"tos-{self.tenant}", f"volume {self.tenant}")
        unlock(pending, mapper, key, f"new volume {self.tenant}")
        try:
            run(["mkfs.ext4", "-q", "-m", "0", "-L", f"tos-{self.tenant}", str(device(mapper))],
                f"making ext4 in volume {self.tenant}")
        finally:
            lock(mapper, f"new volume {self.tenant}")
        record = {"tenant": self.tenant, "wrapped_key": wrapped, "created_by": self.node.name,
                  "created": now(), "format": "luks2+ext4"}
        replace_file(self.keyfile, (json.dumps(record, indent=2) + "\n").encode())
        os.replace(pending, self.file)
        return key

    def _limit_rates(self) -> None:
        """The tenant's volume rates for the volume's mapping, in the tenant's slice, before the
        session can touch it: every process of the tenant is held there, and through it the
        tenant's NFS traffic. systemd sets them on the loop device under the mapping (its
        "originating" device); runtime only, as the next open may get another loop device.
        (Docker's --device-*-bps would do it per container, but Debian's docker 26.1 CLI drops
        them without a word: docker/cli#5321.)"""
        if None in self.rates.values():  # fails closed: no session on a volume without its limits
            raise NodeError(f"/etc/tos/tenants.json names no volume rates for {self.tenant} (written by an "
                            "older deploy): run the deploy")
        run(["systemctl", "set-property", "--runtime", self.slice,
             *(f"{name}={device(self.mapper)} {rate}" for name, rate in self.rates.items())],
            f"limiting volume {self.tenant}'s rates")

    def _mount(self) -> None:
        self.mountpoint.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.is_mounted():
            run(["mount", "-t", "ext4", "-o", "nosuid,nodev", str(device(self.mapper)), str(self.mountpoint)],
                f"mounting volume {self.tenant}")
        self.home.mkdir(exist_ok=True)
        os.chown(self.home, self.node.session_uid, self.node.session_uid)
        self.home.chmod(0o700)
        self.checkpoints.mkdir(mode=0o700, exist_ok=True)

    def _teardown(self) -> None:
        if self.is_mounted():
            run(["umount", str(self.mountpoint)], f"unmounting volume {self.tenant}")
        if self.is_open():
            lock(self.mapper, f"volume {self.tenant}")
        lease = self.lease()
        if lease and lease["node"] == self.node.name:
            self.leasefile.unlink(missing_ok=True)

    def close(self) -> str:
        if not self.is_open() and not self.is_mounted():
            lease = self.lease()
            if lease and lease["node"] == self.node.name:
                self.leasefile.unlink(missing_ok=True)
            return f"{self.tenant}: volume not open here"
        run(["sync", "-f", str(self.mountpoint)], f"flushing volume {self.tenant}") if self.is_mounted() else None
        self._teardown()
        return f"{self.tenant}: volume closed"

    def rotate(self) -> str:
        """New transit key version, key rewrapped under it; the data is not re-encrypted."""
        self._require_share()
        if not self.file.exists():
            raise NodeError(f"tenant {self.tenant} has no volume yet; nothing to rotate")
        with self._locked(), NodeVault(self.node.vault) as vault:
            record = self.wrapped_key()
            old = record["wrapped_key"]
            version = vault.rotate_tenant_key(self.tenant)
            new = vault.rewrap_volume_key(self.tenant, old)
            if vault.unwrap_volume_key(self.tenant, new) != vault.unwrap_volume_key(self.tenant, old):
                raise NodeError(f"rewrapped key of {self.tenant} does not match the old one; kept the old")
            replace_file(self.keyfile, (json.dumps({**record, "wrapped_key": new, "rewrapped": now()}, indent=2) + "\n").encode())
        return f"{self.tenant}: volume key rewrapped with transit key version {version} (v{wrapped_version(old)} before)"
