"""base: what every TOS host gets first. Hostname, time sync, essential packages, hardened sshd.

Every default is documented here; override any of them in group_data/ or the inventory.
"""

import fnmatch
import ipaddress
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Strict, model_validator
from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

from toskit import operations
from toskit.defaults import ALL_DEFAULTS
from toskit.schema import RoleData
from toskit.schema.errors import raise_all
from toskit.schema.model import refuse_key
from toskit.schema.net import Address, HostAddress, IPAddress, PrivateNetwork
from toskit.schema.types import (Hostname, Items, Literal, NonEmpty, Optional, PackageName, allowed, including,
                                 matching, whole)
from toskit.templating import TEMPLATES

# sshd's algorithms this baseline allows [sshd-01/02/03]: no CBC, no SHA-1, no MD5, no 64-bit MACs.
SSHD_KEX = {"mlkem768x25519-sha256", "sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com",
            "curve25519-sha256", "curve25519-sha256@libssh.org", "diffie-hellman-group16-sha512",
            "diffie-hellman-group18-sha512", "diffie-hellman-group-exchange-sha256", "ecdh-sha2-nistp256",
            "ecdh-sha2-nistp384", "ecdh-sha2-nistp521"}
SSHD_CIPHERS = {"chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com", "aes128-gcm@openssh.com",
                "aes256-ctr", "aes192-ctr", "aes128-ctr"}
SSHD_MACS = {"hmac-sha2-512-etm@openssh.com", "hmac-sha2-256-etm@openssh.com", "umac-128-etm@openssh.com",
             "hmac-sha2-512", "hmac-sha2-256", "umac-128@openssh.com"}
# sshd's AllowUsers patterns: user, user@host, with * and ? wildcards.
SshUserPattern = Annotated[str, Strict(), matching(
    r"[A-Za-z0-9._*?-]+(@[A-Za-z0-9.:/*?-]+)?", "is not an sshd user pattern",
    "write a user name, or user@host (sshd's * and ? wildcards allowed)", 128)]
Algorithm = Annotated[str, Strict()]


class HostsEntry(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    name: Hostname
    address: HostAddress


class Data(RoleData):
    # Hostname to set; None means the host's inventory name.
    hostname: Optional[Hostname] = None
    # Names the host resolves without DNS (/etc/hosts, one managed block), e.g. a private identity
    # provider: [{"name": "sso.corp.example", "address": "10.0.0.20"}].
    base_hosts: Items(HostsEntry) = []
    # Installed on every host. chrony keeps time; the rest is what sysadmins and audits rely on.
    base_packages: Annotated[NonEmpty(PackageName), including("chrony", "ca-certificates")] = [
        "ca-certificates", "chrony", "curl", "iproute2", "less", "procps"]
    # Extra packages for your site, added to base_packages (keeps the list above intact).
    base_extra_packages: Items(PackageName) = []
    # Seconds an apt index stays fresh before a deploy refreshes it.
    apt_cache_seconds: whole(1, 30 * 86400) = 86400
    # Time sources: NTP pools and single servers (names or addresses).
    time_pools: Items(Address) = ["2.debian.pool.ntp.org"]
    time_servers: Items(Address) = []
    # Network (CIDR) this host serves time to, or None. A cluster without outside time can make
    # one host its clock (the lab does: its storage host serves the nodes).
    time_serve_network: Optional[PrivateNetwork] = None
    # sshd (dev-sec ssh-baseline control in brackets). Port and addresses it listens on [sshd-07/09].
    sshd_port: whole(1, 65535) = 22
    sshd_listen_addresses: NonEmpty(IPAddress) = ["0.0.0.0"]
    # inet (IPv4 only), inet6 or any [sshd-08].
    sshd_address_family: Literal["inet", "inet6", "any"] = "inet"
    # root may log in with a key (prohibit-password) or not at all (no) [sshd-06]. Passwords never.
    sshd_permit_root_login: Literal["no", "prohibit-password"] = "prohibit-password"
    # Login attempts per connection [sshd-19].
    sshd_max_auth_tries: whole(1, 10) = 3
    # Users allowed to log in; empty allows every account that has a key.
    sshd_allow_users: Items(SshUserPattern) = []
    # Seconds between keep-alive probes, and missed probes before a session is dropped [sshd-36/37].
    sshd_client_alive_interval: whole(1, 3600) = 300
    sshd_client_alive_count_max: whole(1, 10) = 3
    # Key exchange, ciphers and MACs [sshd-01/02/03]: modern only, and all understood by both
    # OpenSSH 9.2 (bookworm) and 10 (trixie) and by paramiko (pyinfra and the audits).
    sshd_kex_algorithms: Annotated[NonEmpty(Algorithm), allowed(SSHD_KEX, "key exchanges")] = [
        "sntrup761x25519-sha512@openssh.com", "curve25519-sha256", "curve25519-sha256@libssh.org",
        "diffie-hellman-group16-sha512", "diffie-hellman-group18-sha512"]
    sshd_ciphers: Annotated[NonEmpty(Algorithm), allowed(SSHD_CIPHERS, "ciphers")] = [
        "chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com", "aes128-gcm@openssh.com",
        "aes256-ctr", "aes192-ctr", "aes128-ctr"]
    sshd_macs: Annotated[NonEmpty(Algorithm), allowed(SSHD_MACS, "MACs")] = [
        "hmac-sha2-512-etm@openssh.com", "hmac-sha2-256-etm@openssh.com", "umac-128-etm@openssh.com",
        "hmac-sha2-512", "hmac-sha2-256"]

    @model_validator(mode="after")
    def _sshd_can_start_and_let_the_deploy_in(self):
        # A config sshd rejects is replaced by Debian's pristine one (see _harden_sshd): refuse it here.
        family = {"inet": 4, "inet6": 6}.get(self.sshd_address_family)
        wrong = [a for a in self.sshd_listen_addresses if family and ipaddress.ip_address(a).version != family]
        if wrong:
            refuse_key("sshd_listen_addresses", self.sshd_listen_addresses,
                       f"has {', '.join(wrong)}, which sshd_address_family {self.sshd_address_family} excludes",
                       "set sshd_address_family to any, or list addresses of that family only")
        user = getattr(self, "ssh_user", None)  # in a host's whole schema: the deploy's own login
        if self.sshd_allow_users and user and not any(
                fnmatch.fnmatchcase(user, pattern.split("@")[0]) for pattern in self.sshd_allow_users):
            refuse_key("sshd_allow_users", self.sshd_allow_users, f"locks out {user}, the deploy's own login",
                       f"add {user!r} to sshd_allow_users")
        return self


DEFAULTS = Data.defaults()

SSHD_CONFIG = "/etc/ssh/sshd_config"
DEBIAN_SSHD_CONFIG = "/usr/share/openssh/sshd_config"  # shipped by openssh-server, known good


@deploy("TOS base", data_defaults=ALL_DEFAULTS)
def base():
    """Installs the packages of the host's other roles too, in the same apt transaction."""
    from roles import all_packages_of, host_problems  # the package imports this module first
    # The host's whole data, every role's keys: nothing is changed on any host if one is wrong.
    raise_all(host_problems(host.name, host.groups, host.data.dict()))
    name = host.data.hostname or host.name

    server.hostname(name="Set the hostname", hostname=name)
    files.line(
        name="Resolve the hostname locally (Debian's 127.0.1.1 convention)",
        path="/etc/hosts", line=r"^127\.0\.1\.1\s", replace=f"127.0.1.1\t{name}",
    )
    files.block(name="Names resolved without DNS (base_hosts)", path="/etc/hosts", marker="# {mark} TOS base_hosts",
                content="\n".join(f"{e['address']}\t{e['name']}" for e in host.data.base_hosts) or None,
                present=bool(host.data.base_hosts))
    apt.packages(
        name="Install essential packages (and those of the host's roles)",
        packages=all_packages_of(host.groups, host.data),
        update=True, cache_time=host.data.apt_cache_seconds, no_recommends=True,
    )

    chrony_conf = operations.template(
        name="Configure time sync (chrony)",
        src=str(TEMPLATES / "chrony.conf.j2"), dest="/etc/chrony/chrony.conf",
        mode="644",
    )
    # trixie's chrony also ships chronyd-restricted.service, which conflicts with chrony.service:
    # with both enabled (as an image's presets leave them), which one runs after a boot is a race.
    systemd.service(name="One chronyd: chronyd-restricted off", service="chronyd-restricted.service",
                    running=False, enabled=False)
    systemd.service(name="Run chrony", service="chrony.service", running=True, enabled=True)
    systemd.service(name="Restart chrony for its new config", service="chrony.service",
                    restarted=True, _if=chrony_conf.did_change)

    _harden_sshd()


def _harden_sshd():
    config = operations.template(
        name="Harden sshd (dev-sec ssh-baseline) [sshd-05: root-only 0600]",
        src=str(TEMPLATES / "sshd_config.j2"), dest=SSHD_CONFIG,
        mode="600",
    )
    # Checked before sshd reloads it. If sshd rejects it, Debian's pristine config goes back in
    # place so no reboot can lock us out, and the deploy stops on this host with sshd's message.
    server.shell(
        name="Check the sshd config before reloading",
        commands=[f"sshd -t || {{ cp {DEBIAN_SSHD_CONFIG} {SSHD_CONFIG}; exit 1; }}"],
        _if=config.did_change,
    )
    # sshd binds its own listeners, so Port/ListenAddress above are what it serves [sshd-07/09];
    # trixie can also hand it port 22 through systemd's ssh.socket, which ignores sshd_config.
    socket = systemd.service(name="sshd listens itself: no ssh.socket", service="ssh.socket",
                             running=False, enabled=False)
    systemd.service(name="Run sshd", service="ssh.service", running=True, enabled=True)
    # Restart, not reload, so changed listeners are re-bound; KillMode=process keeps open sessions.
    systemd.service(name="Restart sshd for its new config", service="ssh.service", restarted=True,
                    _if=any_changed(config, socket))
