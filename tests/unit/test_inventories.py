"""Generated and example inventories load through pyinfra itself, with group_data applied."""

import pytest

from roles.base import DEFAULTS
from toskit import audit
from toskit.inventory import load_inventory
from toskit.lab import inventory
from toskit.lab.config import GATEWAY_SERVER_NAME, LabConfig


def write_lab_inventory(tmp_path, monkeypatch, **settings):
    path = tmp_path / "lab.py"
    monkeypatch.setattr(inventory, "INVENTORY", path)
    inventory.write(LabConfig(state_dir=tmp_path / "state", **settings).with_hosts())
    return path


@pytest.fixture
def lab_inventory(tmp_path, monkeypatch):
    return write_lab_inventory(tmp_path, monkeypatch)


def test_lab_inventory_groups_hosts_and_pins_their_keys(lab_inventory):
    targets = {t.name: t for t in load_inventory(str(lab_inventory), DEFAULTS)}
    assert set(targets) == {"storage", "node1", "node2", "gateway"}
    assert "nodes" in targets["node1"].groups and "storage" in targets["storage"].groups
    assert "gateways" in targets["gateway"].groups
    node = targets["node1"].data
    assert (node["ssh_hostname"], node["ssh_port"], node["ssh_strict_host_key_checking"]) == ("127.0.0.1", 22202, "yes")
    assert node["ssh_known_hosts_file"].endswith("state/ssh/known_hosts")
    # The lab's clock: nodes follow the storage host, which serves the lab network.
    assert node["time_servers"] == ["10.213.0.11"] and node["time_pools"] == []
    assert targets["storage"].data["time_serve_network"] == "10.213.0.0/24"
    # group_data/all.py applies, and role defaults fill the rest.
    assert node["base_extra_packages"] == [] and node["ssh_port"] == 22202


def test_the_lab_gateway_serves_the_gateway_name_and_follows_the_storage_hosts_clock(lab_inventory):
    gateway = next(t for t in load_inventory(str(lab_inventory), DEFAULTS) if t.name == "gateway").data
    assert gateway["gateway_server_name"] == GATEWAY_SERVER_NAME == "gateway.tos.lab"
    assert (gateway["ssh_port"], gateway["cluster_ip"]) == (22204, "10.213.0.14")
    assert gateway["time_servers"] == ["10.213.0.11"] and gateway["time_serve_network"] is None


@pytest.mark.parametrize("name,has,lacks", [
    ("gateway", {"gateway_server_name", "cluster_ip"}, {"session_image_mirror", "tenant_network_forbidden"}),
    ("node1", {"session_image_mirror", "tenant_network_forbidden"}, {"gateway_server_name"}),
    ("storage", {"time_serve_network"}, {"gateway_server_name", "session_image_mirror"}),
])
def test_each_group_gets_its_own_lab_data_only(lab_inventory, name, has, lacks):
    data = next(t for t in load_inventory(str(lab_inventory), DEFAULTS) if t.name == name).data
    is_set = {key for key, value in data.items() if value is not None}  # role defaults may hold None
    assert has <= is_set and not lacks & is_set


@pytest.mark.parametrize("count,gateways", [(0, []), (1, ["gateway"]), (2, ["gateway1", "gateway2"])])
def test_the_lab_inventory_lists_as_many_gateways_as_booted(tmp_path, monkeypatch, count, gateways):
    path = write_lab_inventory(tmp_path, monkeypatch, gateway_count=count)
    assert [t.name for t in load_inventory(str(path), DEFAULTS) if "gateways" in t.groups] == gateways
    assert "gateways = [" in path.read_text()


def test_audit_ssh_config_mirrors_pyinfra_connection_data(lab_inventory):
    config = audit.ssh_config(load_inventory(str(lab_inventory), DEFAULTS))
    stanza = config.split("Host node2\n")[1].split("\n\n")[0]
    assert "HostName 127.0.0.1" in stanza and "Port 22203" in stanza and "User root" in stanza
    assert "StrictHostKeyChecking yes" in stanza and "IdentitiesOnly yes" in stanza


def test_example_production_inventory_loads():
    targets = load_inventory("inventories/example_production.py", DEFAULTS)
    groups = {g for t in targets for g in t.groups}
    assert {"storage", "nodes"} <= groups
    assert all(t.data["ssh_strict_host_key_checking"] == "yes" for t in targets)


def test_missing_inventory_says_how_to_make_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="make lab"):
        load_inventory(str(tmp_path / "lab.py"), DEFAULTS)
