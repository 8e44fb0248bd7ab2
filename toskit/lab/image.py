"""The Debian host images the lab guests boot from.

The bare image is minimal: systemd, udev, dbus, sshd and a kernel, plus the lab's identity unit.
A prepared image adds, per inventory group, the Debian packages the deploy would install there
(roles.all_packages_of). dpkg then runs here, natively, in about a minute, instead of for 15-25
minutes under emulation in every guest; the deploy still configures everything and checks every
package. TOS_LAB_PREPARED_IMAGES=0 boots the bare image, for a bootstrap of a bare host.
Images are cached by a hash of their recipe and rebuilt only when the recipe changes.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from . import procs
from .aptcache import AptCache, debian_mirrors
from .config import GUEST_APT_CACHE, GUEST_APT_CACHE_PORT, LabConfig

GUEST_FILES = Path(__file__).parent / "guest"
# Bump when the build steps below change in a way the recipe fields do not show.
RECIPE_VERSION = 4
PACKAGES = ["systemd-sysv", "udev", "dbus", "kmod", "openssh-server", "linux-image-amd64"]
DISK_SIZE = "12G"
# A profile whose flags make it confine nothing (`flags=(unconfined)`, `flags=(complain, ...)`).
CONFINES_NOTHING = re.compile(r"\bflags=\([^)]*\b(unconfined|complain)\b")
# Kept although unconfined: they give the container runtimes the label production nodes run them
# under (docker-default's rules name the peer `runc`), on the path the hibernation tests take.
RUNTIME_PROFILES = {"runc", "crun"}
# no_timer_check: under TCG on a loaded machine the kernel's IO-APIC timer check can miss its ticks
# and panic at boot ("IO-APIC + timer doesn't work!": CI21's rebuilt node2, while test_4 ran).
KERNEL_CMDLINE = ("root=/dev/vda rw console=ttyS0 net.ifnames=0 no_timer_check "
                  "systemd.unified_cgroup_hierarchy=1 systemd.show_status=false")

# (source in GUEST_FILES, path in the image, mode)
IMAGE_FILES = [
    ("tos-lab-identity", "usr/local/lib/tos-lab/tos-lab-identity", 0o755),
    ("tos-lab-identity.service", "etc/systemd/system/tos-lab-identity.service", 0o644),
    ("10-wan.network", "etc/systemd/network/10-wan.network", 0o644),
    ("update-initramfs.conf", "etc/initramfs-tools/update-initramfs.conf", 0o644),
]


def recipe(suite: str, role_packages: tuple = ()) -> dict:
    """Everything that determines the image's bytes; its hash names the cached image."""
    mirrors = debian_mirrors()
    return {
        "version": RECIPE_VERSION,
        "suite": suite,
        "mirrors": mirrors,
        "packages": PACKAGES,
        "role_packages": sorted(set(role_packages)),
        "disk_size": DISK_SIZE,
        "files": {src: hashlib.sha256((GUEST_FILES / src).read_bytes()).hexdigest()
                  for src, _, _ in IMAGE_FILES},
    }


def recipe_hash(r: dict) -> str:
    return hashlib.sha256(json.dumps(r, sort_keys=True).encode()).hexdigest()[:16]


class HostImage:
    def __init__(self, config: LabConfig, images_dir: Path | None = None, label: str = "bare",
                 role_packages: tuple = ()):
        """label names the image in the cache (bare, or the group it was prepared for)."""
        self.config = config
        self.label = label
        self.recipe = recipe(config.suite, role_packages)
        images_dir = images_dir or config.cache_dir / "images"
        self.dir = images_dir / f"{config.suite}-{label}-{recipe_hash(self.recipe)}"

    @property
    def disk(self) -> Path:
        return self.dir / "disk.qcow2"

    @property
    def kernel(self) -> Path:
        return self.dir / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.dir / "initrd.img"

    def is_built(self) -> bool:
        return (self.dir / "recipe.json").exists()

    def ensure(self, log=print) -> float:
        """Builds the image unless the cache has it. Returns the seconds spent building (0 if cached)."""
        if self.is_built():
            return 0.0
        started = time.monotonic()
        log(f"building the {self.label} {self.config.suite} host image {self.dir.name} (once per recipe; ~1-4 min)")
        work = self.dir.with_name(f".build-{self.dir.name}-{os.getpid()}")
        remove_stale_builds(self.dir.parent)
        remove_build(work)
        work.mkdir(parents=True)
        try:
            rootfs = work / "rootfs"
            self._bootstrap(rootfs)
            self._customize(rootfs)
            self._export(rootfs, work)
            shutil.rmtree(rootfs)
            (work / "recipe.json").write_text(json.dumps(self.recipe, indent=2, sort_keys=True) + "\n")
            work.replace(self.dir)
        finally:
            remove_build(work)
        return time.monotonic() - started

    def _bootstrap(self, rootfs: Path) -> None:
        suite, mirrors = self.config.suite, self.recipe["mirrors"]
        sources = [f"deb {mirrors['debian']} {suite} main", f"deb {mirrors['debian']} {suite}-updates main"]
        if mirrors["security"]:
            sources.append(f"deb {mirrors['security']} {suite}-security main")
        env = {**os.environ, "http_proxy": AptCache(self.config).url}
        procs.run(
            ["mmdebstrap", "--variant=minbase", "--mode=root", "--format=directory",
             f"--include={','.join([*PACKAGES, *self.recipe['role_packages']])}", suite, str(rootfs), *sources],
            "mmdebstrap (building the host image)",
            "check that the package cache can reach the Debian mirror: "
            f"{AptCache(self.config).daemon.log}", env=env)

    def _customize(self, rootfs: Path) -> None:
        for src, dest, mode in IMAGE_FILES:
            target = rootfs / dest
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(GUEST_FILES / src, target)
            target.chmod(mode)
        (rootfs / "etc/hostname").write_text("debian\n")
        (rootfs / "etc/hosts").write_text("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
        (rootfs / "etc/fstab").write_text("/dev/vda\t/\text4\terrors=remount-ro\t0\t0\n")
        (rootfs / "etc/modules-load.d/tos-lab.conf").write_text("qemu_fw_cfg\n")
        (rootfs / "etc/apt/apt.conf.d/01-tos-lab-proxy").write_text(
            f'Acquire::http::Proxy "http://{GUEST_APT_CACHE}:{GUEST_APT_CACHE_PORT}";\n'
            # Package descriptions in other languages only slow `apt-get update` under TCG.
            'Acquire::Languages "none";\n')
        # Each guest gets its own host key (pinned by the lab) and machine id at first boot.
        for key in (rootfs / "etc/ssh").glob("ssh_host_*"):
            key.unlink()
        (rootfs / "etc/ssh/sshd_config.d/05-tos-lab-host-key.conf").write_text(
            "# TOS lab: the only host key, written at boot from fw_cfg and pinned in the lab's known_hosts\n"
            "HostKey /etc/ssh/ssh_host_ed25519_key\n")
        (rootfs / "etc/machine-id").write_text("uninitialized\n")
        disable_unconfined_profiles(rootfs)
        procs.run(["systemctl", f"--root={rootfs}", "enable", "systemd-networkd.service",
                   "tos-lab-identity.service"], "enabling the image's units", "see the output above")
        # The guest has no route out: waiting for "online" would only delay boot. sshd-keygen makes
        # the RSA and ECDSA keys sshd is not configured to use: ~27 s before sshd at first boot under TCG.
        procs.run(["systemctl", f"--root={rootfs}", "mask", "systemd-networkd-wait-online.service",
                   "sshd-keygen.service"], "masking units the lab has no use for", "see the output above")
        mark_updated(rootfs)

    def _export(self, rootfs: Path, work: Path) -> None:
        boot = rootfs / "boot"
        shutil.copyfile(max(boot.glob("vmlinuz-*")), work / "vmlinuz")
        shutil.copyfile(max(boot.glob("initrd.img-*")), work / "initrd.img")
        raw = work / "disk.raw"
        procs.run(["mkfs.ext4", "-q", "-F", "-L", "tos-root", "-d", str(rootfs), str(raw), DISK_SIZE],
                  "mkfs.ext4 (writing the image)", "check free disk space in the cache folder")
        procs.run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(work / "disk.qcow2")],
                  "qemu-img convert", "check free disk space in the cache folder")
        raw.unlink()


def mark_updated(rootfs: Path) -> None:
    """The caches a first boot would build (ldconfig, the journal's catalog, udev's hwdb) built here,
    natively, by the image's own programs, and /etc and /var marked up to date: the units that
    rebuild them at boot (ConditionNeedsUpdate=) then skip, instead of taking tens of seconds each
    of every new guest's boot under TCG."""
    for argv, what in ((["ldconfig"], "ldconfig"), (["journalctl", "--update-catalog"], "the journal's catalog"),
                       (["systemd-hwdb", "update"], "udev's hwdb")):
        procs.run(["chroot", str(rootfs), *argv], f"building {what} in the image", "see the output above")
    newer = (rootfs / "usr").stat().st_mtime_ns + 10**9  # a second past /usr: newer in whole seconds too
    for folder in ("etc", "var"):
        stamp = rootfs / folder / ".updated"
        stamp.write_text(f"# As systemd-update-done writes it: /{folder} is newer than /usr.\nTIMESTAMP_NSEC={newer}\n")
        os.utime(stamp, ns=(newer, newer))


def disable_unconfined_profiles(rootfs: Path) -> list:
    """Disables the AppArmor profiles that confine nothing (flags unconfined or complain), the way
    apparmor's own docs do (a link in /etc/apparmor.d/disable). trixie ships ~100 of them, for
    desktop programs no lab host runs; compiling them at every boot took apparmor.service ~60 s
    under TCG. Profiles that enforce (chronyd's; Docker's docker-default, loaded by dockerd) stay."""
    profiles = rootfs / "etc/apparmor.d"
    disabled = []
    if not profiles.is_dir():
        return disabled
    (profiles / "disable").mkdir(exist_ok=True)
    for profile in sorted(p for p in profiles.iterdir() if p.is_file()):
        if profile.name not in RUNTIME_PROFILES and CONFINES_NOTHING.search(profile.read_text(errors="replace")):
            link = profiles / "disable" / profile.name
            if not link.is_symlink():
                link.symlink_to(f"/etc/apparmor.d/{profile.name}")
            disabled.append(profile.name)
    return disabled


def remove_build(work: Path, mounts: Path = Path("/proc/self/mounts")) -> None:
    """Removes a build folder; first unmounts what mmdebstrap mounted in its chroot and left when
    killed: /proc, /sys, a devpts, and a bind of this machine's own /dev/shm, whose files a plain
    recursive removal would delete."""
    if not work.exists():
        return
    inside = [line.split()[1].replace("\\040", " ") for line in mounts.read_text().splitlines()]
    for mountpoint in sorted((m for m in inside if m.startswith(f"{work}/")), key=len, reverse=True):
        subprocess.run(["umount", "--lazy", mountpoint], capture_output=True)
    subprocess.run(["rm", "-rf", "--one-file-system", str(work)], capture_output=True)


def remove_stale_builds(images_dir: Path) -> None:
    """Build folders of `lab up`s that were killed mid-build (their pid is gone)."""
    for work in images_dir.glob(".build-*"):
        pid = work.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            remove_build(work)
