"""The lab as a whole: preflight checks, then up / down / status / destroy."""

import json
import os
import runpy
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

from roles import all_packages_of
from toskit.inventory import load_inventory
from toskit.check import DataView, check_targets, role_defaults
from toskit.schema import DataError

from . import hostpackages, identity, inventory, keys, network, procs
from .aptcache import AptCache
from .config import PROJECT_ROOT, LabConfig
from .errors import LabError
from .image import HostImage
from .vault import LabVault
from .vm import Guest, probe_kvm

SHUTDOWN_TIMEOUT = 60


class Lab:
    def __init__(self, config: LabConfig, log=print):
        self.config = config
        self.log = log
        self.apt_cache = AptCache(config)
        self.vault = LabVault(config)
        self.guests = [Guest(config, host) for host in config.hosts]

    # ---- preflight: the host packages it lacks are installed (apt), then every check runs before
    # the lab writes or starts anything
    def preflight(self) -> None:
        if os.geteuid() != 0:
            raise LabError("the lab must run as root (it creates a network namespace, taps and VMs)",
                           "run it as root, e.g. `sudo make lab`")
        hostpackages.install_missing(self.log)
        for path in (self.config.state_dir, self.config.cache_dir):
            probe = path
            while not probe.exists():
                probe = probe.parent
            free_gb = shutil.disk_usage(probe).free / 2**30
            if free_gb < self.config.min_free_gb:
                raise LabError(f"only {free_gb:.1f} GB free under {probe}; the lab needs "
                               f"{self.config.min_free_gb} GB (image, overlays, package cache)",
                               "free some disk space, or point TOS_LAB_STATE / TOS_LAB_CACHE elsewhere")
        self._check_ports()

    def _check_ports(self) -> None:
        stopped = [g.host for g in self.guests if g.pid() is None]
        wanted = [(h.ssh_port, f"ssh of {h.name}") for h in stopped]
        wanted += [(h.https_port, f"HTTPS of {h.name}") for h in stopped if h.https_port is not None]
        if not self.apt_cache.running():
            wanted.append((self.config.apt_cache_port, "the package cache"))
        if not self.vault.running():
            wanted += [(self.config.vault_port, "OpenBao"), (self.config.vault_port + 1, "OpenBao's cluster port")]
        taken = [f"127.0.0.1:{port} ({what})" for port, what in wanted if not procs.port_is_free(port)]
        if taken:
            raise LabError(f"ports already in use: {', '.join(taken)}",
                           "stop what listens there (ss -ltnp), or move the lab with TOS_LAB_SSH_PORT, "
                           "TOS_LAB_APT_CACHE_PORT, TOS_LAB_VAULT_PORT, TOS_LAB_HTTPS_PORT")

    # ---- lifecycle
    def up(self) -> dict:
        """Brings every part up; parts already running are left as they are. Returns timings."""
        started = time.monotonic()
        self.preflight()
        cfg = self.config
        for d in (cfg.state_dir, cfg.run_dir, cfg.ssh_dir):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        cfg.state_dir.chmod(0o700)
        cfg.cache_dir.mkdir(parents=True, exist_ok=True)
        client_key = keys.ensure_ssh_keypair(cfg.ssh_key, "tos-lab")
        self.apt_cache.start()
        self.vault.start()
        self._identity()
        inventory.write(cfg)  # the prepared images are made from its data (and the provider's client id)

        images = self._images()
        needed = {images[g.host.group].dir: images[g.host.group] for g in self.guests if not g.overlay.exists()}
        with ThreadPoolExecutor(max_workers=max(1, len(needed))) as pool:
            image_seconds = max(pool.map(lambda image: image.ensure(self.log), needed.values()), default=0.0)
        network.ensure(cfg)
        to_boot = [g for g in self.guests if g.pid() is None]
        for guest in self.guests:
            guest.prepare(images[guest.host.group], client_key)
        keys.write_secret(cfg.known_hosts, "".join(
            keys.known_hosts_line(g.host.ssh_port, g.host_public_key()) + "\n" for g in self.guests).encode())
        accel = self._accel(self.guests[0].base()["kernel"]) if to_boot else "-"
        for guest in to_boot:
            guest.start(accel)
        if to_boot:
            self.log(f"booting {', '.join(g.host.name for g in to_boot)} under {accel.upper()}")
        with ThreadPoolExecutor(max_workers=max(1, len(self.guests))) as pool:
            boot = dict(zip((g.host.name for g in self.guests),
                            pool.map(lambda g: g.wait_for_ssh(cfg.boot_timeout), self.guests)))
        timings = {"image_build_s": round(image_seconds, 1), "accel": accel,
                   "booted": [g.host.name for g in to_boot],
                   "boot_to_ssh_s": {name: round(s, 1) for name, s in boot.items()},
                   "up_s": round(time.monotonic() - started, 1)}
        (cfg.run_dir / "last-up.json").write_text(json.dumps(timings, indent=2) + "\n")
        return timings

    def _identity(self) -> None:
        """OpenBao as the lab's identity provider, for the lab's gateways (identity.py)."""
        if not any(h.group == "gateways" for h in self.config.hosts):
            return
        from roles.portal import DEFAULTS as PORTAL
        from toskit.vault_portal import PortalAccess
        lab_data = runpy.run_path(str(PROJECT_ROOT / "group_data" / "lab.py"))
        path = PortalAccess("", "", PORTAL["portal_kv_mount"], PORTAL["portal_kv_prefix"], "").secret_path("lab")
        identity.setup(self.config, self.vault, lab_data.get("tenants", []), PORTAL["portal_kv_mount"], path)

    def _images(self) -> dict:
        """The host image of each inventory group: bare, or prepared with the group's packages
        (from the lab inventory's data, checked first as a deploy would)."""
        groups = {g.host.group for g in self.guests}
        if not self.config.prepared_images:
            bare = HostImage(self.config)
            return {group: bare for group in groups}
        targets = load_inventory(str(inventory.INVENTORY), role_defaults())
        try:
            check_targets(targets)
        except DataError as e:
            raise LabError(f"the lab's data is invalid: {e}", "fix the key it names in group_data/") from None
        images = {}
        for group in sorted(groups):
            target = next(t for t in targets if group in t.groups)
            packages = all_packages_of(target.groups, DataView(target.data))
            images[group] = HostImage(self.config, label=group, role_packages=tuple(packages))
        return images

    def _accel(self, kernel: str) -> str:
        if self.config.accel != "auto":
            return self.config.accel
        return "kvm" if probe_kvm(kernel, self.config.cache_dir, self.log) else "tcg"

    def down(self) -> list:
        """Stops every process the lab started and removes its network. Returns what was stopped."""
        stopped = []
        running = [g for g in self.guests if g.pid() is not None]
        for guest in running:
            guest.request_poweroff()
        with ThreadPoolExecutor(max_workers=max(1, len(running))) as pool:
            for guest, was_running in zip(running, pool.map(lambda g: g.stop(SHUTDOWN_TIMEOUT), running)):
                if was_running:
                    stopped.append(guest.host.name)
        if self.vault.stop():
            stopped.append("openbao")
        if self.apt_cache.stop():
            stopped.append("apt-cacher-ng")
        if network.remove(self.config):
            stopped.append("lab network")
        return stopped

    def destroy(self) -> list:
        """down, then deletes the lab's state (overlays, keys, Vault data). The image cache stays."""
        stopped = self.down()
        shutil.rmtree(self.config.state_dir, ignore_errors=True)
        inventory.INVENTORY.unlink(missing_ok=True)
        return stopped

    def rebuild(self, name: str) -> dict:
        """Destroys one host (its disk and identity) and boots it fresh from the image, as if a
        dead machine were replaced. The other hosts, Vault and the cache are left as they are."""
        guest = next((g for g in self.guests if g.host.name == name), None)
        if guest is None:
            self.config.host(name)  # raises the error that lists the lab's hosts
        guest.request_poweroff()
        guest.stop(SHUTDOWN_TIMEOUT)
        shutil.rmtree(guest.dir, ignore_errors=True)
        return self.up()

    def status(self) -> dict:
        hosts = {}
        for g in self.guests:
            if g.pid() is None:
                hosts[g.host.name] = "stopped"
            else:
                hosts[g.host.name] = "ssh ok" if g.ssh_ok() else "running, ssh not answering"
        return {
            "hosts": hosts,
            "openbao": self.vault.status(),
            "apt-cacher-ng": "running" if self.apt_cache.running() else "stopped",
            "lab network": self.config.netns if network.exists(self.config) else "absent",
        }
