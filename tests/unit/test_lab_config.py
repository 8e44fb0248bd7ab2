import pytest

from toskit.lab.config import LabConfig
from toskit.lab.errors import LabError

LAB_VARIABLES = ("TOS_LAB_STORAGE", "TOS_LAB_NODES", "TOS_LAB_GATEWAYS", "TOS_LAB_SSH_PORT", "TOS_LAB_NETWORK",
                 "TOS_LAB_HTTPS_PORT", "TOS_LAB_GATEWAY_MEMORY_MB")


@pytest.fixture
def clean_env(monkeypatch):
    """No TOS_LAB_* setting of this machine's leaks into a test of the defaults."""
    for var in LAB_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_default_lab_is_one_storage_two_nodes_and_a_gateway_on_loopback_ports(clean_env):
    config = LabConfig.from_env()
    assert [(h.name, h.group) for h in config.hosts] == [("storage", "storage"), ("node1", "nodes"),
                                                          ("node2", "nodes"), ("gateway", "gateways")]
    assert [h.ssh_port for h in config.hosts] == [22201, 22202, 22203, 22204]
    assert [h.lab_ip for h in config.hosts] == ["10.213.0.11", "10.213.0.12", "10.213.0.13", "10.213.0.14"]
    assert len({h.mac for h in config.hosts}) == 4
    assert [h.https_port for h in config.hosts] == [None, None, None, 28443]
    assert [h.memory_mb for h in config.hosts] == [1024, 2048, 2048, 768]


def test_counts_and_network_are_configurable(clean_env):
    clean_env.setenv("TOS_LAB_NODES", "3")
    clean_env.setenv("TOS_LAB_STORAGE", "2")
    clean_env.setenv("TOS_LAB_GATEWAYS", "2")
    clean_env.setenv("TOS_LAB_NETWORK", "10.99.0.0/26")
    config = LabConfig.from_env()
    assert [h.name for h in config.hosts] == ["storage1", "storage2", "node1", "node2", "node3", "gateway1", "gateway2"]
    assert config.host("node3").lab_address == "10.99.0.15/26"
    assert config.host("gateway2").lab_address == "10.99.0.17/26"


@pytest.mark.parametrize("count,gateways", [
    (0, []),
    (1, [("gateway", 28443)]),
    (2, [("gateway1", 28443), ("gateway2", 28444)]),
])
def test_gateways_are_named_by_count_and_forward_https_from_consecutive_ports(count, gateways):
    config = LabConfig(gateway_count=count).with_hosts()
    assert [(h.name, h.https_port) for h in config.hosts if h.group == "gateways"] == gateways


@pytest.mark.parametrize("count", [1, 2])
def test_gateways_come_last_so_storage_and_nodes_keep_their_ports_addresses_and_macs(count):
    without = LabConfig(gateway_count=0).with_hosts().hosts
    with_gateways = LabConfig(gateway_count=count).with_hosts().hosts
    assert with_gateways[:len(without)] == without
    assert [h.index for h in with_gateways[len(without):]] == list(range(len(without) + 1, len(without) + count + 1))


def test_gateway_memory_and_https_port_come_from_the_environment(clean_env):
    clean_env.setenv("TOS_LAB_GATEWAY_MEMORY_MB", "512")
    clean_env.setenv("TOS_LAB_HTTPS_PORT", "30443")
    gateway = LabConfig.from_env().host("gateway")
    assert (gateway.memory_mb, gateway.https_port) == (512, 30443)


@pytest.mark.parametrize("count,url", [
    (1, "https://gateway.tos.lab:28443/"),
    (2, "https://gateway.tos.lab:28443/"),  # the first gateway's
    (0, None),
])
def test_the_gateway_url_is_the_first_gateways_forward(count, url):
    assert LabConfig(gateway_count=count).with_hosts().gateway_url == url


@pytest.mark.parametrize("var,value,named", [
    ("TOS_LAB_NODES", "two", "TOS_LAB_NODES"),
    ("TOS_LAB_NODES", "99", "TOS_LAB_NODES"),
    ("TOS_LAB_GATEWAYS", "3", "TOS_LAB_GATEWAYS"),
    ("TOS_LAB_GATEWAYS", "-1", "TOS_LAB_GATEWAYS"),
    ("TOS_LAB_GATEWAYS", "one", "TOS_LAB_GATEWAYS"),
    ("TOS_LAB_GATEWAY_MEMORY_MB", "768M", "TOS_LAB_GATEWAY_MEMORY_MB"),
    ("TOS_LAB_HTTPS_PORT", "https", "TOS_LAB_HTTPS_PORT"),
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
