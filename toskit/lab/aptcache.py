"""The lab's Debian package cache: apt-cacher-ng on 127.0.0.1, kept across labs in the cache folder.

Guests reach it at GUEST_APT_CACHE through a qemu guestfwd, so a second lab downloads nothing again.
It forwards only to the mirror this machine's own apt sources use.
"""

import re
from pathlib import Path

from . import procs
from .config import LabConfig
from .errors import LabError

APT_SOURCE_FILES = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]


def debian_mirrors(source_files=APT_SOURCE_FILES) -> dict:
    """The Debian archive and security mirrors this machine's apt already uses.

    Returns {"debian": URI, "security": URI or None}; both one-line and deb822 sources are read.
    """
    uris = []
    for path in source_files:
        try:
            text = path.read_text()
        except OSError:
            continue
        uris += re.findall(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)", text, re.M)
        uris += [u for line in re.findall(r"^URIs:\s*(.+)$", text, re.M) for u in line.split()]
    uris = [u.rstrip("/") for u in uris if u.startswith("http://")]
    archive = next((u for u in uris if u.endswith("/debian")), None)
    security = next((u for u in uris if u.endswith("/debian-security")), None)
    if archive is None:
        raise LabError("this machine's apt sources name no http:// Debian mirror (a URI ending in /debian)",
                       "add your Debian mirror to /etc/apt/sources.list; the lab caches packages from it")
    return {"debian": archive, "security": security}


class AptCache:
    def __init__(self, config: LabConfig):
        self.config = config
        self.root = config.cache_dir / "apt-cacher-ng"
        self.daemon = procs.Daemon(config.run_dir, "apt-cacher-ng", marker=str(self.root / "conf"))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.config.apt_cache_port}"

    def running(self) -> bool:
        return self.daemon.running()

    def write_config(self) -> Path:
        conf = self.root / "conf"
        for sub in ("conf", "cache", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        mirrors = debian_mirrors()
        (conf / "backends_debian").write_text(mirrors["debian"] + "/\n")
        (conf / "acng.conf").write_text(
            f"CacheDir: {self.root / 'cache'}\n"
            f"LogDir: {self.root / 'log'}\n"
            "SupportDir: /usr/lib/apt-cacher-ng\n"
            f"Port: {self.config.apt_cache_port}\n"
            "BindAddress: 127.0.0.1\n"
            # Requests for any known Debian mirror are served from our own mirror only.
            "Remap-debrep: file:deb_mirror*.gz /debian ; file:backends_debian\n"
            "ExThreshold: 4\n"
            "ReportPage: acng-report.html\n"
        )
        return conf

    def start(self) -> None:
        if self.running():
            return
        conf = self.write_config()
        # ForeGround=1: it does not fork, so the pid file names the daemon itself.
        self.daemon.launch(["apt-cacher-ng", "-c", str(conf), "ForeGround=1"], self.config.apt_cache_port)

    def stop(self) -> bool:
        return self.daemon.stop()
