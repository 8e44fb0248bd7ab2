"""What the wire sees: every frame on one guest's lab link, captured on this machine.

The capture socket is opened inside the lab's network namespace on the guest's tap, so it sees
all of that guest's traffic to the other guests (NFS included) and nothing of this machine's.
"""

import socket
import struct
import threading

from . import network
from .config import LabConfig, LabHost

ETH_P_ALL = 0x0003


class Capture:
    def __init__(self, config: LabConfig, host: LabHost):
        self.config = config
        self.tap = network.tap_name(host)
        self.frames = []
        self._stop = threading.Event()

    def __enter__(self) -> "Capture":
        with network.inside(self.config):
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            self.sock.bind((self.tap, 0))
        self.sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                self.frames.append(self.sock.recv(65535))
            except socket.timeout:
                continue
            except OSError:
                return

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()

    @property
    def data(self) -> bytes:
        return b"".join(self.frames)

    def tcp_payload_bytes(self, port: int) -> int:
        """Bytes of TCP payload to or from `port` (IPv4): proof that the traffic was there."""
        total = 0
        for frame in self.frames:
            if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
                continue
            ihl = (frame[14] & 0x0F) * 4
            ip_len = struct.unpack("!H", frame[16:18])[0]
            tcp = 14 + ihl
            src, dst = struct.unpack("!HH", frame[tcp:tcp + 4])
            if port in (src, dst):
                total += ip_len - ihl - (frame[tcp + 12] >> 4) * 4
        return total
