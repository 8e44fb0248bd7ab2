"""The private lab network: a bridge with one tap per guest, inside a network namespace of its own.

The namespace has no other interface, so guest-to-guest traffic cannot leave this machine. qemu runs
in the machine's own namespace (its ssh forwards listen on 127.0.0.1); it gets each tap as an open
file descriptor that the lab opens from inside the lab namespace.
"""

import ctypes
import fcntl
import os
import struct
import subprocess
from contextlib import contextmanager
from pathlib import Path

from . import procs
from .config import LabConfig, LabHost

CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
BRIDGE = "labbr0"


def tap_name(host: LabHost) -> str:
    return f"labtap{host.index}"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def exists(config: LabConfig) -> bool:
    return Path("/run/netns", config.netns).exists()


def ensure(config: LabConfig) -> None:
    """Creates the namespace, bridge and taps that are missing; leaves existing ones alone."""
    ns = config.netns
    if not exists(config):
        procs.run(["ip", "netns", "add", ns], "creating the lab network namespace",
                  "the lab needs root and a kernel with network namespaces")
    links = _ip("-n", ns, "-o", "link", "show").stdout
    if f" {BRIDGE}:" not in links:
        procs.run(["ip", "-n", ns, "link", "add", BRIDGE, "type", "bridge"],
                  "creating the lab bridge", "the lab needs the bridge kernel module")
    _ip("-n", ns, "link", "set", BRIDGE, "up")
    for host in config.hosts:
        tap = tap_name(host)
        if f" {tap}:" not in links:
            procs.run(["ip", "-n", ns, "tuntap", "add", "dev", tap, "mode", "tap"],
                      f"creating {tap}", "the lab needs /dev/net/tun")
        _ip("-n", ns, "link", "set", tap, "master", BRIDGE, "up")


@contextmanager
def inside(config: LabConfig):
    """Runs the block with this thread in the lab's network namespace; fds opened there (taps,
    sockets) keep belonging to it afterwards."""
    libc = ctypes.CDLL(None, use_errno=True)
    here = os.open("/proc/self/ns/net", os.O_RDONLY)
    lab = os.open(f"/run/netns/{config.netns}", os.O_RDONLY)
    try:
        if libc.setns(lab, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns into the lab namespace")
        try:
            yield
        finally:
            if libc.setns(here, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back to the machine's namespace")
    finally:
        os.close(here)
        os.close(lab)


def open_tap(config: LabConfig, host: LabHost) -> int:
    """Opens the host's tap inside the lab namespace; returns an fd qemu can take as `tap,fd=N`."""
    with inside(config):
        fd = os.open("/dev/net/tun", os.O_RDWR)
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", tap_name(host).encode(), IFF_TAP | IFF_NO_PI))
    return fd


def remove(config: LabConfig) -> bool:
    """Deletes the namespace and with it the bridge and taps. True if it existed."""
    if not exists(config):
        return False
    procs.run(["ip", "netns", "delete", config.netns], "deleting the lab network namespace",
              f"stop any process still inside it (ip netns pids {config.netns}) and run down again")
    return True
