"""The qemu command line is where the lab's network-safety promise is kept: check it exactly."""

import json

import pytest

from toskit.lab.config import LabConfig
from toskit.lab.vm import Guest


@pytest.fixture
def guest(tmp_path):
    config = LabConfig(state_dir=tmp_path).with_hosts()
    g = Guest(config, config.host("node1"))
    g.dir.mkdir(parents=True)
    g.base_file.write_text(json.dumps({"disk": "/img/disk.qcow2", "kernel": "/img/vmlinuz",
                                       "initrd": "/img/initrd.img"}))
    return g


def _netdevs(argv):
    return [argv[i + 1] for i, a in enumerate(argv) if a == "-netdev"]


def test_user_network_is_restricted_and_forwards_only_to_loopback(guest):
    wan, lab = _netdevs(guest.argv("tcg", tap_fd=7))
    parts = wan.split(",")
    assert parts[0] == "user" and "restrict=on" in parts
    fwds = [p for p in parts if p.startswith(("hostfwd=", "guestfwd="))]
    assert fwds[0] == "hostfwd=tcp:127.0.0.1:22202-:22"
    # Guest-side forwards lead only to this machine's loopback (the package cache and Vault), or
    # to commands qemu runs itself (the outside stand-in: a banner, a source of zeros, a sink), which
    # connect nowhere.
    assert [f.split("-cmd:", 1)[1] for f in fwds[1:]] == [
        "socat - TCP:127.0.0.1:23142", "socat - TCP:127.0.0.1:28200", "echo tos-outside", "cat /dev/zero",
        "sh -c 'cat >/dev/null'"]
    assert lab == "tap,id=lab,fd=7"


def test_no_other_network_backends(guest):
    argv = guest.argv("tcg", tap_fd=7)
    assert len(_netdevs(argv)) == 2
    assert not any(a in argv for a in ("-nic", "-net"))


def test_tcg_is_single_threaded_and_kvm_uses_host_cpu(guest):
    tcg, kvm = guest.argv("tcg", 7), guest.argv("kvm", 7)
    assert tcg[tcg.index("-accel") + 1] == "tcg,thread=single"
    assert kvm[kvm.index("-accel") + 1] == "kvm" and kvm[kvm.index("-cpu") + 1] == "host"


def test_identity_reaches_the_guest_through_fw_cfg_files_not_argv(guest):
    argv = guest.argv("tcg", 7)
    fw = [argv[i + 1] for i, a in enumerate(argv) if a == "-fw_cfg"]
    assert all(item.startswith("name=opt/tos/") and ",file=" in item for item in fw)
    assert not any("PRIVATE KEY" in a for a in argv)
