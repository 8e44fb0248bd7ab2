"""Lab settings. Each can be overridden by the environment variable named in its comment."""

import hashlib
import ipaddress
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from .errors import LabError

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Addresses inside each guest's user-mode network that qemu forwards to services on this machine.
# Nothing else leaves a guest: its user-mode network runs with restrict=on.
GUEST_APT_CACHE = "10.0.2.100"
GUEST_APT_CACHE_PORT = 3142
GUEST_VAULT = "10.0.2.101"
GUEST_VAULT_PORT = 8200
# A stand-in for a destination outside the cluster: qemu answers it itself (a banner, then
# closes), so a tenant's allowed egress can be shown without traffic leaving this machine.
GUEST_OUTSIDE = "10.0.2.200"
GUEST_OUTSIDE_PORT = 8080
GUEST_OUTSIDE_BANNER = "tos-outside"
# Two more ports of it for the network quota's audits: one streams zeros until the session hangs
# up (a download), one swallows what it gets (an upload).
GUEST_OUTSIDE_SOURCE_PORT = 8081
GUEST_OUTSIDE_SINK_PORT = 8082
# The name the lab's gateways serve browsers under (their TLS certificate's name): a browser on
# this machine maps it to 127.0.0.1 and opens https://gateway.tos.lab:<https_port>/.
GATEWAY_SERVER_NAME = "gateway.tos.lab"
# The name of the lab's OpenBao as an identity provider (its issuer): a browser on this machine
# maps it to 127.0.0.1, a gateway guest to GUEST_VAULT (both on port vault_port).
VAULT_NAME = "vault.tos.lab"


@dataclass(frozen=True)
class LabHost:
    name: str
    group: str
    index: int
    ssh_port: int
    lab_address: str  # address on the private lab network, with prefix length
    memory_mb: int
    https_port: int | None = None  # on 127.0.0.1, forwarded to the guest's 443 (gateways only)

    @property
    def lab_ip(self) -> str:
        return self.lab_address.split("/")[0]

    @property
    def vault_source_ip(self) -> str:
        """The loopback address this guest's Vault connections come from on this machine, so
        Vault can bind each node's AppRole to its own address as it would in production."""
        return f"127.100.0.{10 + self.index}"

    @property
    def mac(self) -> str:
        return f"52:54:00:7a:00:{self.index:02x}"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise LabError(f"{name}={raw!r} is not a whole number",
                       f"set {name} to a number, e.g. {default}") from None


def _env_choice(name: str, default: str, choices: tuple) -> str:
    value = os.environ.get(name, "") or default
    if value not in choices:
        raise LabError(f"{name}={value!r} is not one of {', '.join(choices)}",
                       f"set {name} to one of {', '.join(choices)} (default {default})")
    return value


@dataclass(frozen=True)
class LabConfig:
    # Debian suite of the host image: trixie (Debian 13) or bookworm.            TOS_LAB_SUITE
    suite: str = "trixie"
    # Hosts booted per inventory group. Gateways (the hosts browsers reach) come after the others,
    # so adding one moves no other host's ports or addresses.
    #                                             TOS_LAB_STORAGE, TOS_LAB_NODES, TOS_LAB_GATEWAYS
    storage_count: int = 1
    node_count: int = 2
    gateway_count: int = 1
    # Guest sizes.  TOS_LAB_NODE_MEMORY_MB, TOS_LAB_STORAGE_MEMORY_MB, TOS_LAB_GATEWAY_MEMORY_MB,
    #                                                                                TOS_LAB_CPUS
    node_memory_mb: int = 2048
    storage_memory_mb: int = 1024
    gateway_memory_mb: int = 768
    cpus: int = 2
    # A gateway runs nginx and the portal, no sessions: one vCPU (under TCG every idle vCPU still
    # costs this machine timer work; the nodes need the cycles).          TOS_LAB_GATEWAY_CPUS
    gateway_cpus: int = 1
    # qemu accelerator: auto = KVM only if a probe boot of the guest kernel proves it works. TOS_LAB_ACCEL
    accel: str = "auto"
    # CPU model qemu emulates under TCG (qemu -cpu; the same on every guest: CRIU restores only
    # onto the CPU features it dumped on).                                       TOS_LAB_TCG_CPU
    tcg_cpu: str = "max"
    # Ports on 127.0.0.1: ssh of the first host (the others follow), package cache, Vault.
    #                              TOS_LAB_SSH_PORT, TOS_LAB_APT_CACHE_PORT, TOS_LAB_VAULT_PORT
    ssh_base_port: int = 22201
    apt_cache_port: int = 23142
    vault_port: int = 28200
    # Port on 127.0.0.1 forwarded to the first gateway's HTTPS port 443 (a second gateway's is the
    # next one), so a browser and the audits on this machine reach it.          TOS_LAB_HTTPS_PORT
    https_port: int = 28443
    # Private network between the guests; it exists only inside the lab's own network namespace.
    #                                                                            TOS_LAB_NETWORK
    network: str = "10.213.0.0/24"
    # Lab state (keys, overlays, Vault data; git-ignored), and the cache kept across labs
    # (host images, packages).                                      TOS_LAB_STATE, TOS_LAB_CACHE
    state_dir: Path = PROJECT_ROOT / ".lab"
    cache_dir: Path = Path("/var/cache/tos-lab")
    # Free disk space required before the lab writes anything.               TOS_LAB_MIN_FREE_GB
    min_free_gb: int = 8
    # Seconds to wait for every guest's sshd to answer.                    TOS_LAB_BOOT_TIMEOUT
    boot_timeout: int = 900
    # Boot each group from an image with its roles' packages already installed (image.py);
    # 0 boots the bare image, so the deploy installs them too.       TOS_LAB_PREPARED_IMAGES
    prepared_images: bool = True
    hosts: tuple = field(default=(), compare=False)

    @classmethod
    def from_env(cls) -> "LabConfig":
        env = os.environ
        config = cls(
            suite=_env_choice("TOS_LAB_SUITE", cls.suite, ("trixie", "bookworm")),
            storage_count=_env_int("TOS_LAB_STORAGE", cls.storage_count),
            node_count=_env_int("TOS_LAB_NODES", cls.node_count),
            gateway_count=_env_int("TOS_LAB_GATEWAYS", cls.gateway_count),
            node_memory_mb=_env_int("TOS_LAB_NODE_MEMORY_MB", cls.node_memory_mb),
            storage_memory_mb=_env_int("TOS_LAB_STORAGE_MEMORY_MB", cls.storage_memory_mb),
            gateway_memory_mb=_env_int("TOS_LAB_GATEWAY_MEMORY_MB", cls.gateway_memory_mb),
            cpus=_env_int("TOS_LAB_CPUS", cls.cpus),
            gateway_cpus=_env_int("TOS_LAB_GATEWAY_CPUS", cls.gateway_cpus),
            accel=_env_choice("TOS_LAB_ACCEL", cls.accel, ("auto", "kvm", "tcg")),
            tcg_cpu=env.get("TOS_LAB_TCG_CPU") or cls.tcg_cpu,
            ssh_base_port=_env_int("TOS_LAB_SSH_PORT", cls.ssh_base_port),
            apt_cache_port=_env_int("TOS_LAB_APT_CACHE_PORT", cls.apt_cache_port),
            vault_port=_env_int("TOS_LAB_VAULT_PORT", cls.vault_port),
            https_port=_env_int("TOS_LAB_HTTPS_PORT", cls.https_port),
            network=env.get("TOS_LAB_NETWORK") or cls.network,
            state_dir=Path(env.get("TOS_LAB_STATE") or cls.state_dir),
            cache_dir=Path(env.get("TOS_LAB_CACHE") or cls.cache_dir),
            min_free_gb=_env_int("TOS_LAB_MIN_FREE_GB", cls.min_free_gb),
            boot_timeout=_env_int("TOS_LAB_BOOT_TIMEOUT", cls.boot_timeout),
            prepared_images=_env_choice("TOS_LAB_PREPARED_IMAGES", "1", ("0", "1")) == "1",
        )
        return config.with_hosts()

    def with_hosts(self) -> "LabConfig":
        """A copy with the host list derived from the counts and the network."""
        if not 0 <= self.storage_count <= 4 or not 0 <= self.node_count <= 8:
            raise LabError(f"{self.storage_count} storage and {self.node_count} node hosts asked for",
                           "use TOS_LAB_STORAGE 0-4 and TOS_LAB_NODES 0-8 (each guest takes up to 2 GB)")
        if not 0 <= self.gateway_count <= 2:
            raise LabError(f"{self.gateway_count} gateway hosts asked for",
                           "use TOS_LAB_GATEWAYS 0-2 (one port from TOS_LAB_HTTPS_PORT on each)")
        try:
            net = ipaddress.ip_network(self.network)
        except ValueError as e:
            raise LabError(f"TOS_LAB_NETWORK={self.network!r} is not a network ({e})",
                           "set TOS_LAB_NETWORK to a CIDR such as 10.213.0.0/24") from None
        if net.version != 4 or net.prefixlen > 27:
            raise LabError(f"TOS_LAB_NETWORK={self.network} is not an IPv4 network of /27 or larger",
                           "set TOS_LAB_NETWORK to a CIDR such as 10.213.0.0/24")
        groups = [("storage", "storage")] if self.storage_count == 1 else \
            [(f"storage{i + 1}", "storage") for i in range(self.storage_count)]
        groups += [(f"node{i + 1}", "nodes") for i in range(self.node_count)]
        gateways = ["gateway"] if self.gateway_count == 1 else [f"gateway{i + 1}" for i in range(self.gateway_count)]
        groups += [(name, "gateways") for name in gateways]
        https_ports = {name: self.https_port + i for i, name in enumerate(gateways)}
        memory = {"storage": self.storage_memory_mb, "nodes": self.node_memory_mb, "gateways": self.gateway_memory_mb}
        hosts = tuple(
            LabHost(
                name=name, group=group, index=index, ssh_port=self.ssh_base_port + index - 1,
                lab_address=f"{net.network_address + 10 + index}/{net.prefixlen}",
                memory_mb=memory[group], https_port=https_ports.get(name),
            )
            for index, (name, group) in enumerate(groups, start=1)
        )
        return replace(self, hosts=hosts)

    def host(self, name: str) -> LabHost:
        for host in self.hosts:
            if host.name == name:
                return host
        raise LabError(f"no lab host named {name!r}",
                       f"use one of: {', '.join(h.name for h in self.hosts)}")

    @property
    def gateway_url(self) -> str | None:
        """The first gateway's address for a browser on this machine (GATEWAY_SERVER_NAME mapped to
        127.0.0.1); None in a lab without gateways."""
        if not any(h.group == "gateways" for h in self.hosts):
            return None
        return f"https://{GATEWAY_SERVER_NAME}:{self.https_port}/"

    @property
    def ssh_dir(self) -> Path:
        return self.state_dir / "ssh"

    @property
    def ssh_key(self) -> Path:
        return self.ssh_dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.ssh_dir / "known_hosts"

    @property
    def run_dir(self) -> Path:
        """Pid files, sockets and logs of the processes the lab started."""
        return self.state_dir / "run"

    @property
    def netns(self) -> str:
        """The lab's network namespace, named after the state folder so two checkouts never collide."""
        digest = hashlib.sha256(str(self.state_dir.resolve()).encode()).hexdigest()[:8]
        return f"toslab-{digest}"
