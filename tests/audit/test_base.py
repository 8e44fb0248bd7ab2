"""Audit of the base role on live hosts: hostname, packages, time sync, sshd.

sshd is checked twice: its effective configuration (`sshd -T`, what the running daemon would use,
whatever file set it) against the dev-sec ssh-baseline, and its behaviour from outside (which
authentication methods and algorithms it really offers to a client).
"""

import paramiko
import pytest

# (control, sshd -T keyword, expected value; a callable gets the host's data)
SSHD_BASELINE = [
    ("sshd-01", "ciphers", lambda d: ",".join(d["sshd_ciphers"])),
    ("sshd-02", "kexalgorithms", lambda d: ",".join(d["sshd_kex_algorithms"])),
    ("sshd-03", "macs", lambda d: ",".join(d["sshd_macs"])),
    ("sshd-06", "permitrootlogin", lambda d: d["sshd_permit_root_login"]),
    ("sshd-07", "port", lambda d: str(d["sshd_port"])),
    ("sshd-08", "addressfamily", lambda d: d["sshd_address_family"]),
    ("sshd-11", "strictmodes", "yes"),
    ("sshd-12", "syslogfacility", "AUTH"),
    ("sshd-13", "loglevel", "VERBOSE"),
    ("sshd-14", "hostkey", "/etc/ssh/ssh_host_ed25519_key"),
    ("sshd-17", "permituserenvironment", "no"),
    ("sshd-18", "logingracetime", "30"),
    ("sshd-19", "maxauthtries", lambda d: str(d["sshd_max_auth_tries"])),
    ("sshd-20", "maxsessions", "10"),
    ("sshd-21", "maxstartups", "10:30:100"),
    ("sshd-22", "pubkeyauthentication", "yes"),
    ("sshd-23", "ignorerhosts", "yes"),
    ("sshd-24", "ignoreuserknownhosts", "yes"),
    ("sshd-25", "hostbasedauthentication", "no"),
    ("sshd-27", "passwordauthentication", "no"),
    ("sshd-28", "permitemptypasswords", "no"),
    ("sshd-29", "kbdinteractiveauthentication", "no"),
    ("sshd-30", "kerberosauthentication", "no"),
    ("sshd-33", "gssapiauthentication", "no"),
    ("sshd-35", "tcpkeepalive", "no"),
    ("sshd-36", "clientaliveinterval", lambda d: str(d["sshd_client_alive_interval"])),
    ("sshd-37", "clientalivecountmax", lambda d: str(d["sshd_client_alive_count_max"])),
    ("sshd-38", "permittunnel", "no"),
    ("sshd-39", "allowtcpforwarding", "no"),
    ("sshd-40", "allowagentforwarding", "no"),
    ("sshd-41", "gatewayports", "no"),
    ("sshd-42", "x11forwarding", "no"),
    ("sshd-44", "printmotd", "no"),
    ("sshd-45", "printlastlog", "no"),
    ("sshd-47", "debianbanner", "no"),
]
# sshd -T prints PermitRootLogin's modern spelling under its old name.
SYNONYMS = {"without-password": "prohibit-password"}


def effective_sshd_config(host) -> dict:
    """The running sshd's effective settings; repeated keywords (hostkey, listenaddress) keep all values."""
    settings = {}
    for line in host.check_output("sshd -T").splitlines():
        keyword, _, value = line.partition(" ")
        values = settings.setdefault(keyword, [])
        if SYNONYMS.get(value, value) not in values:
            values.append(SYNONYMS.get(value, value))
    return {k: v[0] if len(v) == 1 else v for k, v in settings.items()}


@pytest.fixture
def sshd_settings(host, request):
    cache = request.config.cache_sshd = getattr(request.config, "cache_sshd", {})
    if host.backend.hostname not in cache:
        cache[host.backend.hostname] = effective_sshd_config(host)
    return cache[host.backend.hostname]


@pytest.mark.parametrize("control,keyword,expected", SSHD_BASELINE, ids=[c[0] for c in SSHD_BASELINE])
def test_sshd_effective_setting(target, sshd_settings, control, keyword, expected):
    want = expected(target.data) if callable(expected) else expected
    assert sshd_settings.get(keyword) == want, f"{control}: sshd runs with {keyword}={sshd_settings.get(keyword)!r}"


@pytest.mark.control("sshd-09")
def test_sshd_listens_only_on_configured_addresses(target, host, sshd_settings):
    listen = sshd_settings.get("listenaddress")
    listen = listen if isinstance(listen, list) else [listen]
    expected = [f"{a}:{target.data['sshd_port']}" for a in target.data["sshd_listen_addresses"]]
    assert sorted(listen) == sorted(expected)
    # ...and what is really listening agrees: sshd's own sockets, no socket-activated extra port.
    sockets = [line.split()[3] for line in host.check_output("ss -Hltnp").splitlines() if '"sshd"' in line]
    assert sorted(sockets) == sorted(expected)
    assert not host.service("ssh.socket").is_running


@pytest.mark.control("sshd-27")
def test_sshd_offers_only_public_key_authentication(target):
    """Asks the live daemon, as a client would, which authentication methods it accepts."""
    with paramiko.Transport((target.address, target.port)) as transport:
        transport.start_client(timeout=15)
        with pytest.raises(paramiko.BadAuthenticationType) as refused:
            transport.auth_none("root")
        assert refused.value.allowed_types == ["publickey"]
        # The algorithms negotiated with a modern client come from the hardened lists.
        assert transport.remote_cipher in target.data["sshd_ciphers"]
        assert transport.host_key_type == "ssh-ed25519"


@pytest.mark.control("sshd-05")
def test_sshd_config_readable_by_root_only(host):
    f = host.file("/etc/ssh/sshd_config")
    assert (f.user, f.group, f.mode) == ("root", "root", 0o600)


@pytest.mark.control("sshd-04")
def test_ssh_folder_not_writable_by_others(host):
    d = host.file("/etc/ssh")
    assert (d.user, d.group) == ("root", "root")
    assert d.mode & 0o022 == 0


@pytest.mark.control("tos-base-01")
def test_sshd_running_and_enabled(host):
    ssh = host.service("ssh")
    assert ssh.is_running and ssh.is_enabled


@pytest.mark.control("tos-base-02")
def test_hostname_is_the_inventory_name(target, host):
    assert host.check_output("hostname") == (target.data.get("hostname") or target.name)


@pytest.mark.control("tos-base-03")
def test_essential_packages_installed(target, host):
    wanted = [p.split("=")[0] for p in (*target.data["base_packages"], *target.data["base_extra_packages"])]
    missing = [p for p in wanted if not host.package(p).is_installed]
    assert not missing


@pytest.mark.control("tos-base-04")
def test_time_is_synchronized(target, host):
    """chrony runs and has synchronized to a configured source (or is itself the cluster's clock)."""
    chrony = host.service("chrony")
    assert chrony.is_running and chrony.is_enabled
    # Its conflicting twin would take its place at some boots.
    assert not host.service("chronyd-restricted").is_enabled
    if not (target.data["time_servers"] or target.data["time_pools"]):
        # No upstream: this host is the reference ('local stratum'), serving its own clock.
        assert target.data["time_serve_network"], "no time source and not a time server"
        tracking = host.check_output("chronyc -n tracking")
        assert "7F7F0101" in tracking and "Leap status     : Normal" in tracking
        return
    # Up to 60 s for a freshly booted host to pick a source and settle.
    host.run_expect([0], "chronyc waitsync 30 0.5 0 2")
    sources = host.check_output("chronyc -n sources")
    for server in target.data["time_servers"]:
        assert server in sources, f"time server {server} is not a chrony source"
