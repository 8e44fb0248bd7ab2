"""The base role's data is checked before any operation runs: bad values name host, key and fix."""

import subprocess
from pathlib import Path
from types import SimpleNamespace

import jinja2
import pytest

from roles.base import DEFAULTS, TEMPLATES, Data
from toskit.templating import JINJA_OPTIONS
from toskit.schema import DataError


def data(**overrides):
    return SimpleNamespace(**{**DEFAULTS, **overrides})


def test_defaults_are_valid():
    Data.check("node1", data())


@pytest.mark.parametrize("key,value", [
    ("hostname", "node_1"),
    ("hostname", "node1;reboot"),
    ("sshd_port", "22"),
    ("sshd_port", 0),
    ("sshd_port", True),
    ("sshd_permit_root_login", "yes"),
    ("sshd_address_family", "ipx"),
    ("base_extra_packages", ["vim; rm -rf /"]),
    ("base_extra_packages", "vim"),
    ("time_servers", ["ntp.example.org iburst"]),
    ("time_serve_network", "10.0.0.0/33"),
    ("sshd_ciphers", ["aes128-ctr,3des-cbc"]),
    ("sshd_allow_users", ["root admin"]),
    ("sshd_max_auth_tries", 0),
    ("apt_cache_seconds", -1),
])
def test_bad_values_are_rejected_with_host_key_and_fix(key, value):
    with pytest.raises(DataError) as err:
        Data.check("node7", data(**{key: value}))
    message = str(err.value)
    # A list's bad item is named by its index: `base_extra_packages[0] = 'vim; rm -rf /'`.
    assert message.startswith(f"host node7: {key}") and "fix:" in message


def render(template: str, **overrides) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, **JINJA_OPTIONS)
    host = SimpleNamespace(data=data(**overrides))
    return env.from_string((TEMPLATES / template).read_text()).render(host=host)


def test_sshd_template_sets_every_setting_once_and_includes_drop_ins_last():
    lines = [l for l in render("sshd_config.j2").splitlines() if l and not l.startswith("#")]
    # First value wins in sshd: drop-ins included at the end cannot override the hardening.
    assert lines[-1] == "Include /etc/ssh/sshd_config.d/*.conf"
    keywords = [l.split()[0] for l in lines]
    assert len(keywords) == len(set(keywords))
    assert "PasswordAuthentication no" in lines and "PermitRootLogin prohibit-password" in lines
    assert "AllowUsers" not in keywords


def test_sshd_template_renders_data():
    text = render("sshd_config.j2", sshd_port=2222, sshd_allow_users=["ops", "root"],
                  sshd_listen_addresses=["10.0.0.5", "10.0.1.5"])
    assert "Port 2222\n" in text and "AllowUsers ops root\n" in text
    assert "ListenAddress 10.0.0.5\nListenAddress 10.0.1.5\n" in text


@pytest.mark.skipif(not Path("/usr/sbin/sshd").exists(), reason="openssh-server is not installed here")
def test_sshd_accepts_the_rendered_config(tmp_path):
    key = tmp_path / "hostkey"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    conf = tmp_path / "sshd_config"
    conf.write_text(render("sshd_config.j2").replace("/etc/ssh/ssh_host_ed25519_key", str(key)))
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd -t insists on its privsep folder
    result = subprocess.run(["/usr/sbin/sshd", "-t", "-f", str(conf)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_chrony_template_for_a_cluster_time_server():
    text = render("chrony.conf.j2", time_pools=[], time_servers=[], time_serve_network="10.1.0.0/24")
    assert "allow 10.1.0.0/24\nlocal stratum 10\n" in text
    assert not any(line.startswith(("pool", "server")) for line in text.splitlines())
    client = render("chrony.conf.j2", time_pools=[], time_servers=["10.1.0.11"])
    assert "server 10.1.0.11 iburst\n" in client and "allow" not in client
    assert "cmdport 0" in client


def test_role_keys_never_shadow_pyinfra_connection_keys_or_each_other():
    # ssh_port, ssh_user... are how pyinfra reaches a host (in the lab, a forwarded port), not
    # how sshd on the host is configured: a role key of that name would configure the wrong thing.
    from roles import ROLES
    from toskit.tenants import TenantsData
    from toskit.vault_data import VaultAccessData
    keys = [key for role in ROLES for key in role.DEFAULTS]
    assert not [key for key in keys if key.startswith(("ssh_", "_"))]
    # Two roles share a key only through a shared library schema (the same declaration).
    shared = {*VaultAccessData.model_fields, *TenantsData.model_fields}
    own = [key for key in keys if key not in shared]
    assert len(own) == len(set(own))


# What a key's name starts with, by its owner: the role's own name, but for these. base is every
# host's bundle of concerns (its packages, apt, time, sshd, the hostname), runtime is Docker, and
# the tenants' keys (in the quotas role's schema) are the shared library's (toskit/tenants.py), as
# are the keys of Vault's address and credentials (toskit/vault_data.py: the vault and gateway roles').
OWNER_PREFIXES = {"base": ("base_", "apt_", "time_", "sshd_", "hostname"), "runtime": ("docker_",),
                  "sessions": ("session_",), "tenants": ("tenants", "tenant_")}


def key_owners() -> dict:
    """Every key and its owner: a role's module name, or the shared library's ("tenants", "vault",
    "command_gate")."""
    from roles import ROLES
    from toskit.gate_data import CommandGateData
    from toskit.tenants import TenantsData
    from toskit.vault_data import VaultAccessData
    owners = {key: role.__name__.removeprefix("roles.") for role in ROLES for key in role.Data.model_fields}
    return {**owners, **{key: "tenants" for key in TenantsData.model_fields},
            **{key: "vault" for key in VaultAccessData.model_fields},
            **{key: "command_gate" for key in CommandGateData.model_fields}}


def owner_named_by(key: str) -> str | None:
    """The owner whose prefix is the longest one the key starts with (storage_server_ before
    storage_, tenant_network_ before tenant_)."""
    found = [(prefix, owner) for owner in set(key_owners().values())
             for prefix in OWNER_PREFIXES.get(owner, (f"{owner}_",)) if key.startswith(prefix)]
    return max(found, default=("", None), key=lambda pair: len(pair[0]))[1]


def test_each_key_carries_its_owners_name():
    # A reader finds a key's type, default and comment where its name points.
    assert {key: owner for key, owner in key_owners().items() if owner_named_by(key) != owner} == {}


def test_each_renamed_key_pointed_at_another_owner():
    # What the renames of issue 14 fixed; the rule above would have refused every old name.
    from toskit.schema.renamed import RENAMED_KEYS
    owners = key_owners()
    assert [old for old, new in RENAMED_KEYS.items() if owner_named_by(old) == owners[new]] == []


def test_roles_stand_alone_and_read_one_table_of_defaults():
    # No role imports another (a key another role owns comes from the shared table), and every
    # role's deploy gets that table, so no role can miss a default it reads (as tenant_network
    # once missed the tenants').
    import ast
    from pathlib import Path

    from roles import ROLE_DEPLOYS
    from roles.base import base
    from toskit.defaults import ALL_DEFAULTS
    for path in Path("roles").glob("*.py"):
        imported = {node.module for node in ast.walk(ast.parse(path.read_text()))
                    if isinstance(node, ast.ImportFrom) and node.module}
        assert not {m for m in imported if m.startswith("roles.")}, path
    for role in [base, *ROLE_DEPLOYS]:
        assert role._inner.deploy_data is ALL_DEFAULTS, role.__name__
    assert {"tenants", "tenant_quota_defaults", "docker_subid_start", "hibernation_after"} <= set(ALL_DEFAULTS)
