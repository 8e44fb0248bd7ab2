import json
import os
import socket
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from toskit.lab import keys, lab as lab_module
from toskit.lab.aptcache import debian_mirrors
from toskit.lab.config import GUEST_APT_CACHE, GUEST_OUTSIDE, GUEST_VAULT, LabConfig
from toskit.lab.criu_race import restore_outcome, root_task_ran_ahead
from toskit.lab.errors import LabError
from toskit.lab.lab import Lab
from toskit.lab.vm import Guest


def test_mirrors_come_from_this_machines_apt_sources(tmp_path):
    (tmp_path / "a.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n")
    (tmp_path / "b.list").write_text("deb [arch=amd64] https://other.example/repo stable main\n")
    assert debian_mirrors([tmp_path / "a.sources", tmp_path / "b.list"]) == {
        "debian": "http://mirror.example/debian", "security": "http://mirror.example/debian-security"}


def test_no_debian_mirror_is_a_clear_error(tmp_path):
    (tmp_path / "x.list").write_text("deb http://example.org/ubuntu jammy main\n")
    with pytest.raises(LabError, match="no http:// Debian mirror"):
        debian_mirrors([tmp_path / "x.list"])


def test_ssh_keypair_is_private_and_stable(tmp_path):
    public = keys.ensure_ssh_keypair(tmp_path / "id", "c")
    assert public.startswith("ssh-ed25519 ") and public.endswith(" c")
    assert stat.S_IMODE(os.stat(tmp_path / "id").st_mode) == 0o600
    assert b"OPENSSH PRIVATE KEY" in (tmp_path / "id").read_bytes()
    assert keys.ensure_ssh_keypair(tmp_path / "id", "c") == public
    assert keys.known_hosts_line(2222, public) == "[127.0.0.1]:2222 " + " ".join(public.split()[:2])


def test_server_certificate_is_signed_by_the_lab_ca_for_the_guest_address(tmp_path):
    cert_path, key_path = keys.issue_server_cert(tmp_path / "ca", tmp_path / "tls", "vault",
                                                 dns=["vault.lab"], ips=["127.0.0.1", "10.0.2.101"])
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    ca = x509.load_pem_x509_certificate((tmp_path / "ca" / "ca.pem").read_bytes())
    ca.public_key().verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "10.0.2.101"}
    # Same names: the certificate is kept, not re-issued on every `up`.
    assert keys.issue_server_cert(tmp_path / "ca", tmp_path / "tls", "vault", dns=["vault.lab"],
                                  ips=["127.0.0.1", "10.0.2.101"]) == (cert_path, key_path)


def test_preflight_refuses_non_root(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(LabError, match="must run as root"):
        Lab(LabConfig(state_dir=tmp_path).with_hosts()).preflight()


def test_preflight_installs_missing_packages_and_a_failure_names_them(monkeypatch, tmp_path):
    from toskit.lab import hostpackages, procs
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(hostpackages.shutil, "which", lambda tool, **_: None if tool == "mmdebstrap" else "/x")
    monkeypatch.setattr(hostpackages, "POLICY_RC", tmp_path / "policy-rc.d")
    ran, said, real_run = [], [], procs.run

    def apt_fails(argv, what, fix, **kwargs):  # apt-get as on a machine without a mirror
        ran.append(argv)
        assert (tmp_path / "policy-rc.d").read_text() == "#!/bin/sh\nexit 101\n"  # no service started
        return real_run(["false"], what, fix)
    monkeypatch.setattr(hostpackages.procs, "run", apt_fails)
    with pytest.raises(LabError) as err:
        Lab(LabConfig(state_dir=tmp_path).with_hosts(), log=said.append).preflight()
    assert said == ["installing the host packages the lab needs: mmdebstrap"] and ran[0][:2] == ["apt-get", "update"]
    assert "mmdebstrap" in err.value.fix and "apt-get install" in err.value.fix
    assert not (tmp_path / "policy-rc.d").exists()


@pytest.mark.parametrize("setting,says,variable", [
    ("ssh_base_port", "ssh of storage", "TOS_LAB_SSH_PORT"),
    ("https_port", "HTTPS of gateway", "TOS_LAB_HTTPS_PORT"),
])
def test_preflight_names_a_taken_port(monkeypatch, tmp_path, setting, says, variable):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(lab_module.shutil, "which", lambda tool, **_: "/x")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        config = LabConfig(state_dir=tmp_path, cache_dir=tmp_path, **{setting: port}).with_hosts()
        with pytest.raises(LabError) as err:
            Lab(config).preflight()
    assert f"127.0.0.1:{port} ({says})" in str(err.value) and variable in err.value.fix


def user_network(config: LabConfig, name: str) -> list:
    """The guest's user-mode network (qemu's -netdev user,...), split into its options."""
    guest = Guest(config, config.host(name))
    guest.dir.mkdir(parents=True)
    guest.base_file.write_text(json.dumps({"disk": "d", "kernel": "k", "initrd": "i"}))
    argv = guest.argv("tcg", tap_fd=3)
    [netdev] = [value for flag, value in zip(argv, argv[1:]) if flag == "-netdev" and value.startswith("user,")]
    return netdev.split(",")


@pytest.mark.parametrize("gateways,name,https", [
    (1, "gateway", "hostfwd=tcp:127.0.0.1:28443-:443"),
    (2, "gateway1", "hostfwd=tcp:127.0.0.1:28443-:443"),
    (2, "gateway2", "hostfwd=tcp:127.0.0.1:28444-:443"),
    (1, "storage", None),
    (1, "node1", None),
])
def test_only_gateways_forward_https_from_this_machines_loopback(tmp_path, gateways, name, https):
    options = user_network(LabConfig(state_dir=tmp_path, gateway_count=gateways).with_hosts(), name)
    assert [o for o in options if o.endswith("-:443")] == ([https] if https else [])


@pytest.mark.parametrize("name,reaches_outside", [("gateway", False), ("storage", True), ("node1", True)])
def test_every_guest_keeps_restrict_the_cache_and_vault_and_only_gateways_lack_the_outside(tmp_path, name,
                                                                                           reaches_outside):
    options = user_network(LabConfig(state_dir=tmp_path).with_hosts(), name)
    assert options[:3] == ["user", "id=wan", "restrict=on"]
    assert any(o.startswith(f"guestfwd=tcp:{GUEST_APT_CACHE}:") for o in options)
    assert any(o.startswith(f"guestfwd=tcp:{GUEST_VAULT}:") for o in options)
    assert any(o.startswith(f"guestfwd=tcp:{GUEST_OUTSIDE}:") for o in options) is reaches_outside


def test_preflight_refuses_low_disk(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(lab_module.shutil, "which", lambda tool, **_: "/x")
    config = LabConfig(state_dir=tmp_path, cache_dir=tmp_path, min_free_gb=10**6).with_hosts()
    with pytest.raises(LabError, match="GB free"):
        Lab(config).preflight()


# criu's log of the restore that failed in CI (issue 16), and the order it shows.
CRIU_LOG_CHILD_FIRST = """(00.994499) Forking task with 1 pid (flags 0x7c028000)
(00.994589) Creating process using clone3()
(01.003482)      1: Error (criu/image.c:630): Unable to open timens-0.img: Permission denied
(01.049993) PID: real 8478 virt 1
(01.052277) Wait until namespaces are created
"""


@pytest.mark.parametrize("log, ahead", [
    (CRIU_LOG_CHILD_FIRST, True),
    ("(00.1) Creating process using clone3()\n(00.2) PID: real 8478 virt 1\n(00.3)      1: Warn: Clocks\n", False),
    ("(00.1) Creating process using clone3()\n", False),  # no restore in it: not proof of anything
])
def test_the_criu_log_tells_whether_the_root_task_ran_ahead_of_its_maps(log, ahead):
    assert root_task_ran_ahead(log) is ahead


@pytest.mark.parametrize("output, outcome", [
    ("acme: volume opened\nacme: restored from hib-1 in 9.0 s", "live"),
    ("acme: restore attempt 1 of hib-1 failed: criu could not restore it (x)\n"
     "acme: restored from hib-1 in 9.0 s (attempt 2)", "retried"),
    ("acme: restore attempt 2 of hib-1 failed: x\nacme: COLD START (checkpoint hib-1 not restorable)", "cold"),
    ("acme: started", "none"),
])
def test_a_restore_is_told_apart_from_a_retried_one_and_a_cold_start(output, outcome):
    assert restore_outcome(output) == outcome


@pytest.mark.parametrize("group,has,lacks", [
    ("nodes", {"docker.io", "criu", "cryptsetup-bin", "nfs-common", "python3", "chrony"}, {"nfs-kernel-server", "mmdebstrap"}),
    ("storage", {"nfs-kernel-server", "chrony"}, {"docker.io", "criu"}),
    ("gateways", {"chrony", "ca-certificates"}, {"docker.io", "criu", "nfs-kernel-server", "nfs-common"}),
])
def test_a_prepared_image_has_its_groups_packages_and_no_others(group, has, lacks):
    from roles import all_packages_of
    from toskit.check import DataView, role_defaults
    packages = set(all_packages_of([group], DataView(role_defaults())))
    assert has <= packages and not lacks & packages


def test_prepared_images_are_cached_apart_by_group_and_packages(tmp_path, monkeypatch):
    from toskit.lab import image
    monkeypatch.setattr(image, "debian_mirrors", lambda: {"debian": "http://mirror/debian", "security": None})
    config = LabConfig(cache_dir=tmp_path).with_hosts()
    bare, nodes = image.HostImage(config), image.HostImage(config, label="nodes", role_packages=("criu",))
    assert bare.dir != nodes.dir and nodes.dir.name.startswith("trixie-nodes-")
    assert image.HostImage(config, label="nodes", role_packages=("criu", "runc")).dir != nodes.dir


def test_every_lab_group_gets_a_prepared_image_with_its_roles_packages(tmp_path, monkeypatch):
    from roles.base import DEFAULTS
    from roles.gateway import DEFAULTS as GATEWAY
    from roles.portal import DEFAULTS as PORTAL
    from toskit.lab import image, inventory
    monkeypatch.setattr(image, "debian_mirrors", lambda: {"debian": "http://mirror/debian", "security": None})
    monkeypatch.setattr(inventory, "INVENTORY", tmp_path / "lab.py")
    config = LabConfig(state_dir=tmp_path / "state", cache_dir=tmp_path).with_hosts()
    inventory.write(config)
    images = Lab(config)._images()  # checks the lab's data first, as `lab up` does
    assert set(images) == {"storage", "nodes", "gateways"}
    assert images["gateways"].dir.name.startswith("trixie-gateways-")
    assert images["gateways"].recipe["role_packages"] == sorted({*DEFAULTS["base_packages"], *GATEWAY["gateway_packages"],
                                                                     *PORTAL["portal_packages"]})


def test_the_image_disables_only_the_profiles_that_confine_nothing(tmp_path):
    from toskit.lab.image import disable_unconfined_profiles
    profiles = tmp_path / "etc/apparmor.d"
    (profiles / "abstractions").mkdir(parents=True)
    (profiles / "discord").write_text('profile discord /usr/share/discord/Discord flags=(unconfined) {\n}\n')
    (profiles / "Xorg").write_text("profile Xorg /usr/bin/Xorg flags=(attach_disconnected, complain) {\n}\n")
    (profiles / "runc").write_text("profile runc /usr/sbin/runc flags=(unconfined) {\n}\n")
    (profiles / "usr.bin.man").write_text("/usr/bin/man flags=(attach_disconnected) {\n  #include <abstractions/base>\n}\n")
    assert disable_unconfined_profiles(tmp_path) == ["Xorg", "discord"]
    assert disable_unconfined_profiles(tmp_path) == ["Xorg", "discord"]  # a second run changes nothing
    assert sorted(p.name for p in (profiles / "disable").iterdir()) == ["Xorg", "discord"]
    assert str((profiles / "disable/discord").readlink()) == "/etc/apparmor.d/discord"
    assert disable_unconfined_profiles(tmp_path / "no-apparmor") == []


def test_the_host_packages_are_one_list_that_ci_installs_too():
    from toskit.lab import hostpackages
    packages = hostpackages.wanted()
    assert {"qemu-system-x86": "qemu-system-x86_64", "nftables": "nft"}.items() <= packages.items()
    ci = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()
    assert "toskit/lab/host-packages" in ci and "qemu-system-x86" not in ci


def test_lab_up_installs_only_what_is_missing(monkeypatch):
    from toskit.lab import hostpackages
    monkeypatch.setattr(hostpackages.shutil, "which", lambda command, **_: None if command == "socat" else "/usr/bin/x")
    assert hostpackages.missing() == ["socat"]
    monkeypatch.setattr(hostpackages.shutil, "which", lambda command, **_: "/usr/bin/x")
    assert hostpackages.install_missing(log=pytest.fail) == []  # nothing to install: nothing run, nothing said


def test_a_killed_builds_mounts_are_undone_before_its_folder_goes(tmp_path, monkeypatch):
    """mmdebstrap, killed, leaves /proc, /sys, a devpts and a bind of this machine's /dev/shm
    mounted in its chroot: removing the folder must never walk into them."""
    from toskit.lab import image
    real_run = image.subprocess.run
    work = tmp_path / ".build-trixie-nodes-abc-999999999"
    (work / "rootfs" / "dev" / "shm").mkdir(parents=True)
    mounts = tmp_path / "mounts"
    mounts.write_text(f"proc {work}/rootfs/proc proc rw 0 0\ntmpfs {work}/rootfs/dev/shm tmpfs rw 0 0\n"
                      f"devpts {work}/rootfs/dev/pts devpts rw 0 0\ntmpfs /dev/shm tmpfs rw 0 0\n")
    calls = []
    monkeypatch.setattr(image.subprocess, "run", lambda argv, **kw: (
        calls.append(argv), real_run(argv, **kw) if argv[0] == "rm" else None)[1])
    image.remove_build(work, mounts)
    assert calls[:3] == [["umount", "--lazy", f"{work}/rootfs/dev/shm"], ["umount", "--lazy", f"{work}/rootfs/dev/pts"],
                         ["umount", "--lazy", f"{work}/rootfs/proc"]]  # deepest first, only its own
    assert calls[3][:3] == ["rm", "-rf", "--one-file-system"] and not work.exists()


def test_only_builds_of_lab_ups_that_are_gone_are_removed(tmp_path, monkeypatch):
    from toskit.lab import image
    removed = []
    monkeypatch.setattr(image, "remove_build", removed.append)
    for pid in (999999999, os.getpid()):
        (tmp_path / f".build-trixie-bare-abc-{pid}").mkdir()
    image.remove_stale_builds(tmp_path)
    assert removed == [tmp_path / ".build-trixie-bare-abc-999999999"]
