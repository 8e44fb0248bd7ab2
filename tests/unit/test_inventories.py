"""Generated and example inventories load through pyinfra itself, with group_data applied."""

import pytest

from roles.base import DEFAULTS
from toskit import audit
from toskit.inventory import load_inventory
from toskit.lab import inventory
from toskit.lab.config import LabConfig


@pytest.fixture
def lab_inventory(tmp_path, monkeypatch):
    path = tmp_path / "lab.py"
    monkeypatch.setattr(inventory, "INVENTORY", path)
    inventory.write(LabConfig(state_dir=tmp_path / "state").with_hosts())
    return path


def test_lab_inventory_groups_hosts_and_pins_their_keys(lab_inventory):
    targets = {t.name: t for t in load_inventory(str(lab_inventory), DEFAULTS)}
    assert set(targets) == {"storage", "node1", "node2"}
    assert "nodes" in targets["node1"].groups and "storage" in targets["storage"].groups
    node = targets["node1"].data
    assert (node["ssh_hostname"], node["ssh_port"], node["ssh_strict_host_key_checking"]) == ("127.0.0.1", 22202, "yes")
    assert node["ssh_known_hosts_file"].endswith("state/ssh/known_hosts")
    # The lab's clock: nodes follow the storage host, which serves the lab network.
    assert node["time_servers"] == ["10.213.0.11"] and node["time_pools"] == []
    assert targets["storage"].data["time_serve_network"] == "10.213.0.0/24"
    # group_data/all.py applies, and role defaults fill the rest.
    assert node["base_extra_packages"] == [] and node["ssh_port"] == 22202


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
