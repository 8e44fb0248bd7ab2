"""base: what every TOS host gets first. Hostname, time sync, essential packages, hardened sshd.

Every default is documented here; override any of them in group_data/ or the inventory.
"""

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files, server, systemd
from pyinfra.operations.util import any_changed

from toskit import validate
from toskit.templating import JINJA_OPTIONS, TEMPLATES

DEFAULTS = {
    # Hostname to set; None means the host's inventory name.
    "hostname": None,
    # Installed on every host. chrony keeps time; the rest is what sysadmins and audits rely on.
    "base_packages": ["ca-certificates", "chrony", "curl", "iproute2", "less", "procps"],
    # Extra packages for your site, added to base_packages (keeps the list above intact).
    "base_extra_packages": [],
    # Seconds an apt index stays fresh before a deploy refreshes it.
    "apt_cache_seconds": 86400,
    # Time sources: NTP pools and single servers (names or addresses).
    "time_pools": ["2.debian.pool.ntp.org"],
    "time_servers": [],
    # Network (CIDR) this host serves time to, or None. A cluster without outside time can make
    # one host its clock (the lab does: its storage host serves the nodes).
    "time_serve_network": None,
    # sshd (dev-sec ssh-baseline control in brackets). Port and addresses it listens on [sshd-07/09].
    "sshd_port": 22,
    "sshd_listen_addresses": ["0.0.0.0"],
    # inet (IPv4 only), inet6 or any [sshd-08].
    "sshd_address_family": "inet",
    # root may log in with a key (prohibit-password) or not at all (no) [sshd-06]. Passwords never.
    "sshd_permit_root_login": "prohibit-password",
    # Login attempts per connection [sshd-19].
    "sshd_max_auth_tries": 3,
    # Users allowed to log in; empty allows every account that has a key.
    "sshd_allow_users": [],
    # Seconds between keep-alive probes, and missed probes before a session is dropped [sshd-36/37].
    "sshd_client_alive_interval": 300,
    "sshd_client_alive_count_max": 3,
    # Key exchange, ciphers and MACs [sshd-01/02/03]: modern only, and all understood by both
    # OpenSSH 9.2 (bookworm) and 10 (trixie) and by paramiko (pyinfra and the audits).
    "sshd_kex_algorithms": ["sntrup761x25519-sha512@openssh.com", "curve25519-sha256",
                           "curve25519-sha256@libssh.org", "diffie-hellman-group16-sha512",
                           "diffie-hellman-group18-sha512"],
    "sshd_ciphers": ["chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com", "aes128-gcm@openssh.com",
                    "aes256-ctr", "aes192-ctr", "aes128-ctr"],
    "sshd_macs": ["hmac-sha2-512-etm@openssh.com", "hmac-sha2-256-etm@openssh.com",
                 "umac-128-etm@openssh.com", "hmac-sha2-512", "hmac-sha2-256"],
}

SSHD_CONFIG = "/etc/ssh/sshd_config"
DEBIAN_SSHD_CONFIG = "/usr/share/openssh/sshd_config"  # shipped by openssh-server, known good


def check_data(name: str, data) -> None:
    """Validates this role's data for one host; raises DataError before anything runs."""
    validate.hostname(name, "hostname", data.hostname or name)
    validate.name_list(name, "base_packages", data.base_packages)
    validate.name_list(name, "base_extra_packages", data.base_extra_packages)
    validate.positive_int(name, "apt_cache_seconds", data.apt_cache_seconds, 30 * 86400)
    validate.address_list(name, "time_pools", data.time_pools)
    validate.address_list(name, "time_servers", data.time_servers)
    validate.network_or_none(name, "time_serve_network", data.time_serve_network)
    validate.port(name, "sshd_port", data.sshd_port)
    validate.address_list(name, "sshd_listen_addresses", data.sshd_listen_addresses)
    validate.choice(name, "sshd_address_family", data.sshd_address_family, ("inet", "inet6", "any"))
    validate.choice(name, "sshd_permit_root_login", data.sshd_permit_root_login, ("no", "prohibit-password"))
    validate.positive_int(name, "sshd_max_auth_tries", data.sshd_max_auth_tries, 10)
    validate.name_list(name, "sshd_allow_users", data.sshd_allow_users)
    validate.positive_int(name, "sshd_client_alive_interval", data.sshd_client_alive_interval, 3600)
    validate.positive_int(name, "sshd_client_alive_count_max", data.sshd_client_alive_count_max, 10)
    for key in ("sshd_kex_algorithms", "sshd_ciphers", "sshd_macs"):
        validate.name_list(name, key, getattr(data, key))


@deploy("TOS base", data_defaults=DEFAULTS)
def base():
    """Installs the packages of the host's other roles too, in the same apt transaction."""
    from roles import all_packages_of  # the package imports this module first
    check_data(host.name, host.data)
    name = host.data.hostname or host.name

    server.hostname(name="Set the hostname", hostname=name)
    files.line(
        name="Resolve the hostname locally (Debian's 127.0.1.1 convention)",
        path="/etc/hosts", line=r"^127\.0\.1\.1\s", replace=f"127.0.1.1\t{name}",
    )
    apt.packages(
        name="Install essential packages (and those of the host's roles)",
        packages=all_packages_of(host.groups, host.data),
        update=True, cache_time=host.data.apt_cache_seconds, no_recommends=True,
    )

    chrony_conf = files.template(
        name="Configure time sync (chrony)",
        src=str(TEMPLATES / "chrony.conf.j2"), dest="/etc/chrony/chrony.conf",
        user="root", group="root", mode="644", jinja_env_kwargs=dict(JINJA_OPTIONS),
    )
    systemd.service(name="Run chrony", service="chrony.service", running=True, enabled=True)
    systemd.service(name="Restart chrony for its new config", service="chrony.service",
                    restarted=True, _if=chrony_conf.did_change)

    _harden_sshd()


def _harden_sshd():
    config = files.template(
        name="Harden sshd (dev-sec ssh-baseline) [sshd-05: root-only 0600]",
        src=str(TEMPLATES / "sshd_config.j2"), dest=SSHD_CONFIG,
        user="root", group="root", mode="600", jinja_env_kwargs=dict(JINJA_OPTIONS),
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
