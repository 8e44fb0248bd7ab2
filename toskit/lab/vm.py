"""Lab guests: one qemu process per host, each on a throwaway overlay over the cached host image."""

import hashlib
import json
import os
import socket
import subprocess
import time
from pathlib import Path

from . import keys, network, procs
from .config import (GUEST_APT_CACHE, GUEST_APT_CACHE_PORT, GUEST_OUTSIDE, GUEST_OUTSIDE_BANNER, GUEST_OUTSIDE_PORT,
                     GUEST_OUTSIDE_SINK_PORT, GUEST_OUTSIDE_SOURCE_PORT,
                     GUEST_VAULT, GUEST_VAULT_PORT,
                     LabConfig, LabHost)
from .errors import LabError
from .image import KERNEL_CMDLINE, HostImage

QEMU = "qemu-system-x86_64"


def ssh_argv(config: LabConfig, host: LabHost, *command: str, batch: bool = True) -> list:
    """ssh to a guest with the lab key, its pinned host key, and nothing else from ~/.ssh."""
    argv = ["ssh", "-F", "/dev/null", "-i", str(config.ssh_key), "-p", str(host.ssh_port),
            "-o", f"UserKnownHostsFile={config.known_hosts}", "-o", "StrictHostKeyChecking=yes",
            "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR"]
    if batch:
        argv += ["-o", "BatchMode=yes"]
    return argv + ["root@127.0.0.1", *command]


class Guest:
    def __init__(self, config: LabConfig, host: LabHost):
        self.config = config
        self.host = host
        self.dir = config.state_dir / "vms" / host.name
        self.overlay = self.dir / "disk.qcow2"
        self.pidfile = config.run_dir / f"{host.name}.pid"
        self.console = config.run_dir / f"{host.name}.console.log"
        self.qmp = config.run_dir / f"{host.name}.qmp"
        self.base_file = self.dir / "base.json"

    @property
    def marker(self) -> str:
        """Unique to this guest's qemu command line (the overlay path)."""
        return str(self.overlay)

    def pid(self) -> int | None:
        return procs.running_pid(self.pidfile, self.marker)

    def base(self) -> dict:
        """The host image this guest's overlay was made from (kernel, initrd, disk)."""
        return json.loads(self.base_file.read_text())

    def prepare(self, image: HostImage, authorized_key: str) -> None:
        """Creates the overlay and the identity handed to the guest; keeps an existing overlay."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self.overlay.exists():
            tmp = self.overlay.with_suffix(".tmp")
            procs.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2",
                       "-b", str(image.disk), str(tmp)], "creating a guest overlay",
                      f"check that {image.disk} exists and the disk has room")
            tmp.replace(self.overlay)
            self.base_file.write_text(json.dumps(
                {"disk": str(image.disk), "kernel": str(image.kernel), "initrd": str(image.initrd)}))
        fw = self.dir / "fw_cfg"
        fw.mkdir(mode=0o700, exist_ok=True)
        (fw / "authorized_keys").write_text(authorized_key + "\n")
        keys.ensure_ssh_keypair(fw / "ssh_host_ed25519_key", f"root@{self.host.name}")
        (fw / "lab_address").write_text(self.host.lab_address)

    def host_public_key(self) -> str:
        return (self.dir / "fw_cfg" / "ssh_host_ed25519_key.pub").read_text().strip()

    def argv(self, accel: str, tap_fd: int) -> list:
        base = self.base()
        fw = self.dir / "fw_cfg"
        cfg = self.config
        forwards = [
            "user,id=wan,restrict=on",  # no outbound at all, except the forwards below
            f"hostfwd=tcp:127.0.0.1:{self.host.ssh_port}-:22",
            f"guestfwd=tcp:{GUEST_APT_CACHE}:{GUEST_APT_CACHE_PORT}-cmd:socat - TCP:127.0.0.1:{cfg.apt_cache_port}",
            f"guestfwd=tcp:{GUEST_VAULT}:{GUEST_VAULT_PORT}-cmd:socat - TCP:127.0.0.1:{cfg.vault_port},,bind={self.host.vault_source_ip}",  # ",," is qemu for ","
        ]
        if self.host.group == "gateways":
            # Browsers and audits on this machine reach its HTTPS; it runs no sessions, so no
            # stand-in for the outside (that shows tenants' egress).
            forwards.append(f"hostfwd=tcp:127.0.0.1:{self.host.https_port}-:443")
            # OpenBao as the lab's identity provider, at the port browsers on this machine use
            # too: one issuer URL (https://vault.tos.lab:<vault_port>) for both.
            forwards.append(f"guestfwd=tcp:{GUEST_VAULT}:{cfg.vault_port}-cmd:socat - "
                            f"TCP:127.0.0.1:{cfg.vault_port},,bind={self.host.vault_source_ip}")
        else:
            forwards += [
                f"guestfwd=tcp:{GUEST_OUTSIDE}:{GUEST_OUTSIDE_PORT}-cmd:echo {GUEST_OUTSIDE_BANNER}",
                f"guestfwd=tcp:{GUEST_OUTSIDE}:{GUEST_OUTSIDE_SOURCE_PORT}-cmd:cat /dev/zero",
                f"guestfwd=tcp:{GUEST_OUTSIDE}:{GUEST_OUTSIDE_SINK_PORT}-cmd:sh -c 'cat >/dev/null'",
            ]
        wan = ",".join(forwards)
        accel_args = (["-accel", "kvm", "-cpu", "host"] if accel == "kvm" else
                      # thread=single: multi-threaded TCG crashed a guest under load (lab-facts).
                      ["-accel", "tcg,thread=single", "-cpu", cfg.tcg_cpu])
        fw_cfg = []
        for name in ("authorized_keys", "ssh_host_ed25519_key", "ssh_host_ed25519_key.pub", "lab_address"):
            fw_cfg += ["-fw_cfg", f"name=opt/tos/{name},file={fw / name}"]
        return [
            QEMU, "-name", f"tos-lab-{self.host.name}", "-machine", "q35", *accel_args,
            "-smp", str(cfg.gateway_cpus if self.host.group == "gateways" else cfg.cpus), "-m", str(self.host.memory_mb),
            "-display", "none", "-monitor", "none", "-serial", f"file:{self.console}",
            "-qmp", f"unix:{self.qmp},server=on,wait=off",
            "-daemonize", "-pidfile", str(self.pidfile),
            "-kernel", base["kernel"], "-initrd", base["initrd"], "-append", KERNEL_CMDLINE,
            # cache=unsafe: the overlay is throwaway, and this roughly halves deploy time under TCG.
            "-drive", f"file={self.overlay},if=virtio,format=qcow2,cache=unsafe,discard=unmap",
            "-object", "rng-random,id=rng0,filename=/dev/urandom", "-device", "virtio-rng-pci,rng=rng0",
            # romfile= : no PXE option ROM; guests boot their kernel directly (and ipxe-qemu can be absent).
            "-netdev", wan, "-device", "virtio-net-pci,netdev=wan,romfile=",
            "-netdev", f"tap,id=lab,fd={tap_fd}",
            "-device", f"virtio-net-pci,netdev=lab,mac={self.host.mac},romfile=",
            *fw_cfg,
        ]

    def start(self, accel: str) -> None:
        if self.pid() is not None:
            return
        self.console.unlink(missing_ok=True)
        tap_fd = network.open_tap(self.config, self.host)
        try:
            procs.run(self.argv(accel, tap_fd), f"starting qemu for {self.host.name}",
                      f"read {self.console}; check that the ports and memory are free",
                      pass_fds=(tap_fd,))
        finally:
            os.close(tap_fd)

    def ssh_ok(self) -> bool:
        return subprocess.run(ssh_argv(self.config, self.host, "true"), stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=30).returncode == 0

    def wait_for_ssh(self, timeout: float) -> float:
        """Polls `ssh true` until the guest answers; returns the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.pid() is None:
                raise LabError(f"qemu for {self.host.name} exited while booting:\n{self.console_tail()}",
                               f"read {self.console}")
            try:
                if self.ssh_ok():
                    return time.monotonic() - started
            except subprocess.TimeoutExpired:
                pass
            time.sleep(2)
        raise LabError(f"{self.host.name} did not answer ssh within {timeout:.0f} s:\n{self.console_tail()}",
                       f"read {self.console}; raise TOS_LAB_BOOT_TIMEOUT on a slow machine")

    def console_tail(self, lines: int = 12) -> str:
        try:
            return "\n".join(self.console.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no console output)"

    def request_poweroff(self) -> None:
        """Asks the guest to shut down cleanly (ACPI power button) through qemu's QMP socket."""
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(5)
                s.connect(str(self.qmp))
                s.recv(4096)
                for command in ("qmp_capabilities", "system_powerdown"):
                    s.sendall(json.dumps({"execute": command}).encode() + b"\n")
                    s.recv(4096)
        except OSError:
            pass

    def stop(self, timeout: float) -> bool:
        """Waits up to `timeout` for a requested clean shutdown, then ends qemu. True if it was running."""
        pid = self.pid()
        if pid is not None:
            procs.wait_gone(pid, timeout)
        return procs.stop(self.pidfile, self.marker, timeout=5) or pid is not None


def probe_kvm(kernel: str, cache_dir: Path, log=print) -> bool:
    """Does the guest kernel really boot under KVM here? Result cached per kernel and qemu build.

    Some machines offer /dev/kvm but a nested hypervisor that stock kernels cannot boot on (qemu
    aborts, or hangs during early boot). The probe boots the kernel with no root filesystem: a
    kernel that reaches its 'cannot mount root' panic has booted, and qemu exits (-no-reboot).
    """
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    qemu_version = subprocess.run([QEMU, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    # By the kernel's bytes: every prepared image carries the same kernel under another path.
    key = f"{hashlib.sha256(Path(kernel).read_bytes()).hexdigest()}|{qemu_version}"
    verdict_file = cache_dir / "kvm-probe.json"
    try:
        verdicts = json.loads(verdict_file.read_text())
    except (OSError, ValueError):
        verdicts = {}
    if key in verdicts:
        return verdicts[key]
    log("probing whether the guest kernel boots under KVM (once per kernel; up to 40 s)")
    console = cache_dir / "kvm-probe.console.log"
    console.unlink(missing_ok=True)
    argv = [QEMU, "-accel", "kvm", "-cpu", "host", "-machine", "q35", "-m", "256", "-display", "none",
            "-monitor", "none", "-serial", f"file:{console}", "-no-reboot", "-nic", "none",
            "-kernel", kernel, "-append", "console=ttyS0 panic=-1"]
    try:
        subprocess.run(argv, capture_output=True, timeout=40)
    except subprocess.TimeoutExpired:
        pass
    try:
        works = "Kernel panic" in console.read_text(errors="replace")
    except OSError:
        works = False
    verdicts[key] = works
    verdict_file.write_text(json.dumps(verdicts, indent=2))
    return works
