import pytest

from toskit.lab.config import LabConfig
from toskit.lab.errors import LabError


def test_default_lab_is_one_storage_and_two_nodes_on_loopback_ports(monkeypatch):
    for var in ("TOS_LAB_STORAGE", "TOS_LAB_NODES", "TOS_LAB_SSH_PORT", "TOS_LAB_NETWORK"):
        monkeypatch.delenv(var, raising=False)
    config = LabConfig.from_env()
    assert [(h.name, h.group) for h in config.hosts] == [("storage", "storage"), ("node1", "nodes"), ("node2", "nodes")]
    assert [h.ssh_port for h in config.hosts] == [22201, 22202, 22203]
    assert [h.lab_ip for h in config.hosts] == ["10.213.0.11", "10.213.0.12", "10.213.0.13"]
    assert len({h.mac for h in config.hosts}) == 3


def test_counts_and_network_are_configurable(monkeypatch):
    monkeypatch.setenv("TOS_LAB_NODES", "3")
    monkeypatch.setenv("TOS_LAB_STORAGE", "2")
    monkeypatch.setenv("TOS_LAB_NETWORK", "10.99.0.0/26")
    config = LabConfig.from_env()
    assert [h.name for h in config.hosts] == ["storage1", "storage2", "node1", "node2", "node3"]
    assert config.host("node3").lab_address == "10.99.0.15/26"


@pytest.mark.parametrize("var,value,named", [
    ("TOS_LAB_NODES", "two", "TOS_LAB_NODES"),
    ("TOS_LAB_NODES", "99", "TOS_LAB_NODES"),
    ("TOS_LAB_SUITE", "sid", "TOS_LAB_SUITE"),
    ("TOS_LAB_ACCEL", "hvf", "TOS_LAB_ACCEL"),
    ("TOS_LAB_NETWORK", "10.0.0.0/30", "TOS_LAB_NETWORK"),
    ("TOS_LAB_NETWORK", "not-a-net", "TOS_LAB_NETWORK"),
])
def test_bad_settings_name_the_variable_and_the_fix(monkeypatch, var, value, named):
    monkeypatch.setenv(var, value)
    with pytest.raises(LabError) as err:
        LabConfig.from_env()
    assert named in str(err.value) and "fix:" in str(err.value)


def test_unknown_host_lists_the_known_ones():
    with pytest.raises(LabError, match="node1, node2"):
        LabConfig().with_hosts().host("node9")


def test_two_checkouts_get_different_network_namespaces(tmp_path):
    a = LabConfig(state_dir=tmp_path / "a").with_hosts()
    b = LabConfig(state_dir=tmp_path / "b").with_hosts()
    assert a.netns != b.netns and a.netns.startswith("toslab-")
