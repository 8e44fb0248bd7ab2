"""The data schema as a hostile new user meets it: every class of bad value, for every key it
applies to, is refused with host, key, value and fix; good values (the shipped and lab data) pass.

The per-key corpus is generated from each role's declared defaults, so a key added to a role is
attacked here without anyone listing it.
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roles import ROLES
from toskit.check import check_inventory
from toskit.schema import DataError, DataErrors
from toskit.schema.renamed import RENAMED_KEYS
from toskit.schema.types import MAX_SIZE, UNITS, size_bytes
from toskit.tenants import TENANT_ID, parse_tenants

# A valid value for each key whose default is None (nothing to mutate otherwise).
SAMPLES = {
    "hostname": "node1", "time_serve_network": "10.0.0.0/24", "quotas_io_devices": ["/dev/vda"],
    "storage_nfs_server": "10.0.0.1", "storage_server_export_clients": ["10.0.0.2"],
    "vault_addr": "https://vault.example.org:8200", "vault_operator_addr": "https://127.0.0.1:8200",
    "vault_ca_file": "/etc/tos/ca.pem", "vault_token_file": "~/.vault-token", "vault_node_cidr": "10.0.0.5/32",
    "session_image_proxy": "http://127.0.0.1:3142",
    "gateway_server_name": "tos.example.org", "gateway_vault_cidr": "10.0.0.9/32",
    "gateway_own_certificate": "/etc/tos/site.pem", "gateway_audit_address": "127.0.0.1",
    "session_image_security_mirror": "http://deb.debian.org/debian-security",
    "portal_public_url": "https://tos.example.org",
    "portal_providers": {"corp": {"issuer": "https://sso.example.org", "client_id": "tos"}},
    # ...and for empty lists.
    "base_extra_packages": ["vim"], "base_hosts": [{"name": "sso.example.org", "address": "10.0.0.20"}], "time_servers": ["10.0.0.1"], "sshd_allow_users": ["ops"],
    "tenants": [{"id": "acme"}],
    "tenant_network_egress_default": [{"network": "203.0.113.0/24", "ports": [443]}],
    "tenant_network_forbidden": ["10.0.0.0/24"],
}
OPTIONAL_LISTS = {"base_extra_packages", "base_hosts", "time_pools", "time_servers", "sshd_allow_users", "tenants",
                  "tenant_network_egress_default", "tenant_network_forbidden"}
ROLE_OF = {key: role for role in ROLES for key in role.Data.model_fields}
# Keys whose values are free text by design (a file on the operator's machine): no shape to break.
FREE_TEXT = {"vault_ca_file", "vault_token_file", "gateway_own_certificate"}


def valid(key):
    return SAMPLES.get(key, ROLE_OF[key].DEFAULTS[key])


def bad_values(key) -> list:
    """The classes of bad value that apply to this key, from the shape of a valid one."""
    value = valid(key)
    if isinstance(value, bool):
        return ["yes", 1, None, [value]]
    if isinstance(value, int):
        return [str(value), True, value + 0.5, -1, 2**70, None]
    if isinstance(value, str):
        shaped = [] if key in FREE_TEXT else [value + "\n", value + "; reboot", " " + value, ""]
        return shaped + [True, 1, [value]] + ([] if key in SAMPLES else [None])
    if isinstance(value, list):
        item = value[0]
        if isinstance(item, dict):
            text = next(k for k, v in item.items() if isinstance(v, str))
            broken = [item, ["x"], [{**item, "typo_key": 1}], [{**item, text: item[text] + "\n"}]]
        else:
            broken = [[item + "\n"], [item + " $(reboot)"], [True], item, {"a": item}]
        return broken + ([] if key in OPTIONAL_LISTS else [[]])
    if isinstance(value, dict):
        return [[], "x", {**value, "typo_key": "1"}]
    raise AssertionError(f"no bad values for {key}={value!r}")


CORPUS = [(key, bad) for key in sorted(ROLE_OF) for bad in bad_values(key)]


def refusal(role, key, value, **others) -> str:
    """The message of the one refusal of this value (others: keys set alongside it)."""
    with pytest.raises(DataError) as err:
        role.Data.check("node7", {**role.DEFAULTS, **others, key: value})
    assert not isinstance(err.value, DataErrors), err.value  # one bad value, one message
    return str(err.value)


def test_every_key_has_a_valid_sample_that_passes():
    for role in ROLES:
        role.Data.check("node7", {**role.DEFAULTS, **{k: valid(k) for k in role.Data.model_fields}})


@pytest.mark.parametrize("key,value", CORPUS, ids=[f"{k}={v!r}"[:60] for k, v in CORPUS])
def test_every_class_of_bad_value_is_refused_for_every_key(key, value):
    message = refusal(ROLE_OF[key], key, value)
    assert message.startswith(f"host node7: {key}") and "\n  fix: " in message, message
    assert "Traceback" not in message and "pydantic" not in message.lower()


# Classes that need a value of their own, one or more keys each.
SPECIFIC = [
    ("docker_userns_user", "root", "an account the system already uses"),
    ("docker_userns_user", "daemon", "an account the system already uses"),
    ("storage_server_export_user", "root", "an account the system already uses"),
    ("storage_server_export_user", "systemd-network", "an account the system already uses"),
    ("docker_subid_start", 1000, "is not a whole number from 100000"),
    ("docker_nofile_soft", 8192, "is above docker_nofile_hard"),
    ("storage_server_export_path", "/srv/../etc", "no '..'"),
    ("storage_mount_path", "/var/lib/./tos", "no '..'"),
    ("storage_volume_root", "run/tos", "is not an absolute path"),
    ("quotas_io_devices", ["/etc/passwd"], "is not a block device"),
    ("quotas_io_devices", ["/dev/null"], "is not a block device"),
    ("quotas_io_devices", [], "is empty"),
    ("hibernation_after", "0s", "is zero"),
    ("hibernation_after", "٣٠h", "is not a duration with a unit"),
    ("hibernation_policy_interval", "2d", "is not a duration with a unit"),
    ("vault_secret_id_ttl", "0h", "is zero"),
    ("vault_secret_id_ttl", "٣٠h", "is not a duration"),
    ("vault_addr", "http://vault.example.org:8200", "is not an https:// address"),
    ("vault_addr", "https://user:pw@vault.example.org", "has more than a scheme, host and port"),
    ("vault_node_cidr", "10.0.0.5/24", "no host bits set"),
    ("vault_node_cidr", "10.0.0.5", "is not a network in CIDR form"),
    ("storage_server_export_clients", ["fd00::1/32"], "is not an IP address"),
    ("storage_server_export_clients", [True], "is not a string"),
    ("time_servers", [True], "is not a string"),
    ("time_servers", ["1.2.3.999"], "is not an IP address"),
    ("sshd_listen_addresses", [], "is empty"),
    ("sshd_ciphers", [], "is empty"),
    ("sshd_listen_addresses", ["0.0.0.0\n"], "is not an IP address"),
    # Found by a hostile pass: an IPv6 zone id carries any text into sshd_config, exports, chrony.
    ("sshd_listen_addresses", ["fe80::1%lo\nPasswordAuthentication yes"], "no zone ids"),
    ("storage_server_export_clients", ["fd00::5%x *(rw,no_root_squash) y"], "no zone ids"),
    ("time_servers", ["fe80::1%x\nallow all"], "is not an IP address or a hostname"),
    ("vault_node_cidr", ["fe80::1%x/128"], "is not a string"),
    ("vault_node_cidr", "fe80::1%x/128", "is not a network in CIDR form"),
    ("vault_node_cidr", "0.0.0.0/0", "the node's Vault credential would work from all"),
    ("vault_node_cidr", "10.0.0.0/255.255.255.0", "is not a network in CIDR form"),
    ("time_serve_network", "0.0.0.0/0", "is not a private network"),
    ("sshd_listen_addresses", ["::"], "which sshd_address_family inet excludes"),
    ("storage_server_export_path", "/etc", "is a system directory"),
    ("storage_mount_path", "/usr", "is a system directory"),
    ("storage_volume_root", "/var/lib/docker", "is a system directory"),
    ("storage_server_export_path", "/srv", "is a system directory"),
    ("storage_nfs_options", ["vers=4.2", "proto=tcp"], "leaves out hard, nosuid, nodev, noexec"),
    ("storage_nfs_options", ["vers=4.2", "hard", "nosuid", "nodev", "noexec", "soft"], "undoes the hardening"),
    ("sshd_ciphers", ["3des-cbc", "aes128-cbc"], "not among the ciphers this baseline allows"),
    ("sshd_macs", ["hmac-md5"], "not among the MACs"),
    ("sshd_kex_algorithms", ["diffie-hellman-group14-sha1"], "not among the key exchanges"),
    ("sshd_ciphers", ["none"], "not among the ciphers"),
    ("docker_log_max_size", "999999g", "is more than 1g per file"),
    ("base_packages", ["curl"], "leaves out chrony, ca-certificates"),
    ("docker_packages", ["docker.io"], "leaves out apparmor, auditd"),
    ("vault_addr", "HTTPS://vault.example.org", "is not an https:// address"),
    ("session_image_mirror", "ftp://ftp.debian.org/debian", "is not an http:// or https:// address"),
    ("session_image_mirror", "http://user:pw@mirror.example.org/debian", "has more than a scheme, host, path"),
    ("session_image_proxy", "http://proxy.example.org:3142/?x=1", "has more than a scheme, host, path"),
    ("vault_secret_id_ttl", "1s", "is shorter than 600s"),
    ("vault_transit_mount", "sys", "is a path Vault itself uses"),
    ("vault_token_file", "/dev/null", "is not a file path"),
    ("time_servers", ["0x7f.1"], "is not an IP address or a hostname"),
    ("hostname", "localhost", "is not a valid hostname"),
    ("docker_userns_user", "kvm", "an account the system already uses"),
    ("storage_server_export_user", "_ssh", "an account the system already uses"),
    ("storage_server_export_uid", 1, "is not a whole number from 100"),
    ("storage_server_export_clients", ["127.0.0.1"], "is not an address another host can reach"),
    ("tenants", [{"id": "acme", "quotas": {"volume_size": "64M", "memory": "1G"}}], "is smaller than the tenant's memory"),
    ("tenants", [{"id": "acme", "quotas": {"volume_size": "16777215T"}}], "is larger than 64T"),
    ("tenant_quota_defaults", {"cpu": 1, "memory": "1G", "swap": 0, "pids": 512, "disk_read": "50M",
                               "disk_write": "50M", "volume_read": "50M", "volume_write": "50M",
                               "network_in": "50M", "network_out": "50M"}, "is not set"),
    ("tenants", [{"id": "acme", "quotas": []}], "is not a mapping"),
    ("tenants", [{"id": "acme", "quotas": {"memory": ["1G"]}}], "is not a size with a unit"),
    ("tenants", [{"id": "acme", "quotas": {"disk_read": "99999999999999T"}}], "larger than 2^64 bytes"),
    ("tenants", [{"id": "acme", "quotas": {"volume_size": "65537K"}}], "is not a multiple of 4K"),
    ("tenants", [{"id": "acme", "quotas": {"memory": "0.1K"}}], "is not a whole number of bytes"),
    ("tenants", [{"id": "acme", "quotas": {"memory": "٣G"}}], "is not a size with a unit"),
    ("tenants", [{"id": "acme\n"}], "is not a tenant id"),
    ("tenants", [{"id": "acme", "hibernate_after": "0s"}], "is zero"),
    ("tenants", [{"id": "acme", "enabled": "no"}], "is not True or False"),
    ("tenants", [{"id": "acme"}, {"id": "acme"}], "is declared twice"),
]


@pytest.mark.parametrize("key,value,reason", SPECIFIC, ids=[f"{k}={v!r}"[:60] for k, v, _ in SPECIFIC])
def test_specific_classes_are_refused_with_their_reason(key, value, reason):
    message = refusal(ROLE_OF[key], key, value)
    assert message.startswith(f"host node7: {key}") and reason in message and "fix: " in message, message


def test_checks_across_keys_name_the_key_to_change():
    message = refusal(ROLE_OF["docker_subid_count"], "docker_subid_count", 2**31, docker_subid_start=3 * 10**9)
    assert message.startswith("host node7: docker_subid_count = 2147483648 runs past the last uid")


@pytest.mark.parametrize("key,value", [
    ("sshd_listen_addresses", ["10.0.0.5", "0.0.0.0"]),
    ("time_servers", ["ntp.example.org", "fd00::1"]), ("vault_addr", "https://[fd00::1]:8200"),
    ("storage_server_export_clients", ["fd00::2"]), ("tenants", [{"id": "acme", "quotas": {"memory": "1.5G"}}]),
    ("sshd_allow_users", ["admin@10.0.0.0/8", "ops*"]),
    ("quotas_io_devices", ["/dev/disk/by-path/pci-0000:00:1f.2-ata-1"]),
    ("base_extra_packages", ["libc6:i386", "vim=2:9.0.1378-2"]), ("time_servers", ["pool.ntp.org.", "NTP1.example.org"]),
    ("tenants", [{"id": "acme", "quotas": {"swap": "0M"}}]),
])
def test_good_values_once_refused_pass(key, value):
    ROLE_OF[key].Data.check("node7", {**ROLE_OF[key].DEFAULTS, key: value})


@pytest.mark.parametrize("addresses", [["::"], ["fd00::5", "10.0.0.5"]])
def test_ipv6_listeners_pass_with_their_family(addresses):
    role = ROLE_OF["sshd_listen_addresses"]
    role.Data.check("node7", {**role.DEFAULTS, "sshd_listen_addresses": addresses, "sshd_address_family": "any"})


def test_all_problems_of_a_role_are_reported_at_once():
    role = ROLE_OF["sshd_port"]
    with pytest.raises(DataErrors) as err:
        role.Data.check("node7", {**role.DEFAULTS, "sshd_port": "22", "sshd_ciphers": [], "hostname": "x\n"})
    assert [e.key for e in err.value.errors] == ["hostname", "sshd_port", "sshd_ciphers"]
    assert str(err.value).startswith("3 problems in the site's data; no host was contacted")


@given(st.text(min_size=1, max_size=30))
def test_a_tenant_id_is_accepted_exactly_when_it_has_the_documented_shape(text):
    import re
    defaults = ROLE_OF["tenant_quota_defaults"].DEFAULTS["tenant_quota_defaults"]
    shaped = re.fullmatch(TENANT_ID, text, re.ASCII) is not None
    try:
        parse_tenants("node7", [{"id": text}], defaults)
        accepted = True
    except DataError:
        accepted = False
    assert accepted == shaped


@given(st.integers(min_value=0, max_value=2**66), st.sampled_from(sorted(UNITS)))
def test_a_whole_size_means_number_times_unit_up_to_2_64(number, unit):
    from pydantic_core import PydanticCustomError
    expected = number * UNITS[unit]
    try:
        assert size_bytes(f"{number}{unit}") == expected and 1 <= expected <= MAX_SIZE
    except PydanticCustomError:
        assert expected == 0 or expected > MAX_SIZE or len(str(number)) > 15


# ---- the inventory: its shape, its typos, and files that do not load

STORAGE = 'storage = [("storage1", {"cluster_ip": "192.0.2.10"})]\n'
NODES = 'nodes = [("node1", {"cluster_ip": "192.0.2.1"})]\n'


def inventory(tmp_path, text: str, name="site.py") -> str:
    """An inventory file, with group data beside it as a site would have (strict host keys)."""
    (tmp_path / "group_data").mkdir(exist_ok=True)
    (tmp_path / "group_data" / "all.py").write_text('ssh_strict_host_key_checking = "yes"\n')
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def check_refuses(path) -> str:
    with pytest.raises(DataError) as err:
        check_inventory(path)
    return str(err.value)


@pytest.mark.parametrize("text,expected", [
    (STORAGE, "group nodes: has no host"),
    (NODES, "group storage: has no host"),
    (STORAGE + NODES.replace("nodes =", "node ="), "group node: is not a group of TOS"),
    (STORAGE + 'nodes = [("storage1", {"cluster_ip": "192.0.2.10"})]\n', "is listed twice"),
    (STORAGE + 'nodes = [("node1", {}), ("node1", {"cluster_ip": "192.0.2.9"})]\n', "is listed twice"),
    (STORAGE + 'nodes = [("node_1", {"hostname": "node1"})]\n', "the inventory name = 'node_1' is not a valid hostname"),
    (STORAGE + 'nodes = [("node1", ["cluster_ip"])]\n', "the host's data = ['cluster_ip'] is not a mapping"),
    (STORAGE + 'nodes = [("node1", {"sshd_prot": 22})]\n', "sshd_prot = 22 is not a key any role reads\n"
                                                          "  fix: did you mean sshd_port?"),
    (STORAGE + 'nodes = [("node1", {"docker_experimantal": True})]\n', "did you mean docker_experimental?"),
    (STORAGE + 'nodes = [("node1", {"cluster_ip": "x; rm -rf /"})]\n', "cluster_ip = 'x; rm -rf /' is not an IP address"),
    (STORAGE + 'nodes = [("node1", {"docker_experimental": False})]\n', "docker_experimental = False is off"),
    (STORAGE + 'nodes = [("node1", {"tenants": [{"id": "acme", "quotas": ["1G"]}]})]\n',
     "tenants[0].quotas = ['1G'] is not a mapping"),
    (STORAGE + NODES + "nodes.append(\n", "site.py:3: does not load: SyntaxError"),
    (STORAGE + NODES + "1 / 0\n", "site.py:3: does not load: ZeroDivisionError"),
])
def test_the_inventory_is_checked_before_any_host(tmp_path, text, expected):
    assert expected in check_refuses(inventory(tmp_path, text))


def test_site_keys_and_groups_are_the_sites_own(tmp_path):
    text = STORAGE + 'nodes = [("node1", {"cluster_ip": "192.0.2.1", "site_rack": "r1"})]\nsite_gpu = ["node1"]\n'
    assert check_inventory(inventory(tmp_path, text)) == 2


@pytest.mark.parametrize("old,new", sorted(RENAMED_KEYS.items()))
def test_a_renamed_key_is_refused_by_its_old_name_and_read_by_its_new_one(tmp_path, old, new):
    host, group = ("storage1", "storage") if ROLE_OF[new].__name__ == "roles.storage_server" else ("node1", "nodes")
    sites = {}
    for key in (old, new):  # a site each: pyinfra compiles a file once per name
        (tmp_path / key).mkdir()
        sites[key] = inventory(tmp_path / key, STORAGE + NODES)
        (tmp_path / key / "group_data" / f"{group}.py").write_text(f"{key} = {valid(new)!r}\n")
    assert check_refuses(sites[old]) == (f"host {host}: {old} = {valid(new)!r} is a key's old name, no longer read\n"
                                         f"  fix: renamed to {new}: rename it in group_data")
    assert check_inventory(sites[new]) == 2


def test_the_renamed_keys_table_names_keys_roles_read():
    from roles import known_keys
    assert set(RENAMED_KEYS.values()) <= known_keys() and not set(RENAMED_KEYS) & known_keys()


def test_the_deploy_refuses_an_old_name_too():
    # As base checks a host's whole data while pyinfra plans, before any operation.
    from roles import host_problems
    [error] = host_problems("node1", ["nodes"], {"cluster_ip": "10.0.0.21", "ssh_strict_host_key_checking": "yes",
                                                 "docker_experimental": True, "session_idle_policy": False})
    assert (error.host, error.key, error.fix) == ("node1", "session_idle_policy",
                                                  "renamed to hibernation_idle_policy: rename it in group_data")


def test_a_group_data_file_that_does_not_load_is_named(tmp_path):
    path = inventory(tmp_path, STORAGE + NODES)
    (tmp_path / "group_data" / "nodes.py").write_text("tenants = [\n")
    assert "nodes.py:1: does not load: SyntaxError" in check_refuses(path)


def test_every_problem_of_every_host_is_reported_at_once(tmp_path):
    text = STORAGE + 'nodes = [("node1", {"cluster_ip": "192.0.2.1", "sshd_port": "22"}),' \
                     ' ("node2", {"cluster_ip": "192.0.2.2", "sshd_prot": 22})]\n'
    message = check_refuses(inventory(tmp_path, text))
    assert "host node1: sshd_port = '22'" in message and "host node2: sshd_prot = 22" in message


@pytest.mark.parametrize("gateways", [0, 1, 2])
def test_the_shipped_and_the_lab_inventories_pass(tmp_path, monkeypatch, gateways):
    from toskit.lab import inventory as lab_inventory
    from toskit.lab.config import LabConfig
    monkeypatch.setattr(lab_inventory, "INVENTORY", tmp_path / "lab.py")
    lab_inventory.write(LabConfig(state_dir=tmp_path / "state", gateway_count=gateways).with_hosts())
    assert check_inventory(str(tmp_path / "lab.py")) == 3 + gateways
    assert check_inventory("inventories/example_production.py") == 4  # storage1, node1, node2, gateway1


GATEWAY = 'gateways = [("gateway1", {"cluster_ip": "192.0.2.30", "gateway_server_name": "www.example.org"})]\n'


def test_gateways_are_optional_and_a_gateway_with_its_name_passes(tmp_path):
    assert check_inventory(inventory(tmp_path, STORAGE + NODES + GATEWAY)) == 3
    assert check_inventory(inventory(tmp_path, STORAGE + NODES, name="no_gateway.py")) == 2


def test_a_gateway_is_checked_with_base_alone_while_its_group_has_no_roles():
    from roles import host_problems
    assert host_problems("gateway1", ["gateways"], {"cluster_ip": "10.0.0.31", "ssh_strict_host_key_checking": "yes",
                                                     "gateway_server_name": "gateway.tos.lab"}) == []


def test_the_cluster_ca_cannot_be_the_browsers_ca():
    from roles import host_problems
    gateway = {"cluster_ip": "10.0.0.31", "ssh_strict_host_key_checking": "yes", "gateway_server_name": "gw.tos.lab"}
    assert host_problems("gateway1", ["gateways"], {**gateway, "vault_cluster_pki_mount": "tos-cluster"}) == []
    [error] = host_problems("gateway1", ["gateways"], {**gateway, "vault_cluster_pki_mount": "pki"})
    assert "gateway1" in str(error) and "vault_cluster_pki_mount" in str(error) and "mount of its own" in str(error)


def test_the_readme_documents_every_key():
    from pathlib import Path
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert [key for key in sorted(ROLE_OF) if f"`{key}`" not in readme] == []


@pytest.mark.parametrize("text,expected", [
    (STORAGE + 'nodes = [("node1", {"cluster_ip": "192.0.2.10"})]\n', "cluster_ip = '192.0.2.10' is also storage1's"),
    (STORAGE + 'nodes = [("node1", {"cluster_ip": "192.0.2.1", "hostname": "storage1"})]\n', "is also storage1's"),
    (STORAGE + 'nodes = [("node1", {"cluster_ip": "192.0.2.1", "tenants": [{"id": "acme"}]}),'
     ' ("node2", {"cluster_ip": "192.0.2.2", "tenants": [{"id": "acme", "enabled": False}]})]\n',
     "tenant acme = {'id': 'acme', 'enabled': False} differs from node1's"),
    (STORAGE + 'nodes = [("node1", {})]\n', "cluster_ip = None is not set"),
    (STORAGE + NODES + 'gateways = [("gateway1", {})]\n', "host gateway1: cluster_ip = None is not set"),
    (STORAGE + NODES + GATEWAY.replace("www.example.org", "x; rm -rf /"),
     "host gateway1: gateway_server_name = 'x; rm -rf /' is not a valid hostname"),
    (STORAGE + NODES + GATEWAY.replace("gateway1", "node1"),
     "host node1: group gateways = 'node1' is listed twice (also in nodes)"),
    (STORAGE + NODES + GATEWAY.replace("192.0.2.30", "192.0.2.1"), "cluster_ip = '192.0.2.1' is also node1's"),
    (STORAGE + 'nodes = [("node1", {"cluster_ip": "192.0.2.1", "_ignore_errors": True})]\n',
     "_ignore_errors = True is not a key any role reads"),
    (STORAGE + 'nodes = [("node1", {"cluster_ip": "192.0.2.1", "ssh_strict_host_key_checking": "no"})]\n',
     "ssh_strict_host_key_checking = 'no' is not one of 'yes'"),
    (STORAGE + 'nodes = [("node1", {"cluster_ip": "192.0.2.1", "ssh_user": "root", "sshd_allow_users": ["ops"]})]\n',
     "locks out root, the deploy's own login"),
    (STORAGE + 'nodes = [("node1", {}, "x")]\n', "has the entry ('node1', {}, 'x'), not a name or (name, data)"),
    ('import sys\nsys.exit(0)\n', "site.py:2: does not load: SystemExit"),
])
def test_hosts_agree_and_pyinfra_settings_keep_the_deploy_safe(tmp_path, text, expected):
    assert expected in check_refuses(inventory(tmp_path, text))


def test_a_misspelt_group_data_file_beside_the_inventory_is_named(tmp_path):
    path = inventory(tmp_path, STORAGE + NODES)
    (tmp_path / "group_data" / "node.py").write_text("tenants = []\n")
    assert "group_data/node.py: names no group" in check_refuses(path)


@pytest.mark.parametrize("text,expected", [
    (STORAGE + NODES + NODES.replace("node1", "node9"), "site.py:3: assigns nodes a second time"),
    (STORAGE + 'nodes = [("node1", {"cluster_ip": "192.0.2.1", "cluster_ip": "192.0.2.2"})]\n',
     "site.py:2: sets 'cluster_ip' twice in one mapping"),
])
def test_what_python_would_silently_drop_is_refused(tmp_path, text, expected):
    assert expected in check_refuses(inventory(tmp_path, text))


def test_a_host_whose_data_leaves_out_a_roles_keys_is_checked_with_their_defaults():
    # As base sees a node while pyinfra plans: the other roles' defaults are not in its data yet.
    from roles import host_problems
    assert host_problems("node1", ["nodes"], {"cluster_ip": "10.0.0.21", "ssh_strict_host_key_checking": "yes",
                                               "docker_experimental": True}) == []
