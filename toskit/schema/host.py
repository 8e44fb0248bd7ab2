"""A host's whole schema: the inventory's own keys, then base's and those of the host's roles.

A key no role reads is refused (a typo such as `sshd_prot` would otherwise be ignored), and the
old name of a renamed key with its new one (toskit/schema/renamed.py); keys of the site's own start
with `site_` and are left alone.
"""

from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import Strict, ValidationError, create_model
from pyinfra.connectors.ssh import ConnectorData

from .errors import SITE_PREFIX, DataError
from .model import RoleData, field_names, problems, unknown_key
from .net import Address, HostAddress
from .types import Hostname, LocalPath, Optional, matching, whole

# pyinfra's global arguments a host's data may set: how the deploy becomes root. The others
# (_ignore_errors, _success_exit_codes, _continue_on_error, _if, ...) would have pyinfra ignore
# the deploy's own checks (`sshd -t`, `dockerd --validate`) on every operation: they are refused.
PERMITTED_ARGUMENTS = {"_sudo", "_sudo_user", "_use_sudo_login", "_sudo_password", "_su_user", "_doas",
                       "_doas_user"}
LoginName = Annotated[str, Strict(), matching(r"[a-z_][a-z0-9_-]{0,31}", "is not a login name",
                                              "write a user name such as root or admin")]


class InventoryData(RoleData):
    # The host's address on the cluster's private network: NFS exports, Vault's CIDR, time.
    # Every host of a role group has one.
    cluster_ip: Optional[HostAddress] = None
    # The name a gateway serves browsers under (hosts of the gateways group). Declared here, with
    # the inventory's per-host keys, as no role reads it yet.
    gateway_server_name: Optional[Hostname] = None
    # How pyinfra (and the audits) reach the host: pyinfra's connector keys.
    ssh_hostname: Optional[Address] = None
    ssh_port: Optional[whole(1, 65535)] = None
    ssh_user: Optional[LoginName] = None
    ssh_key: Optional[LocalPath] = None
    ssh_known_hosts_file: Optional[LocalPath] = None
    # Host keys are never trusted on first use: known_hosts must already hold them.
    ssh_strict_host_key_checking: Literal["yes"] = "yes"


# The rest of pyinfra's connector keys (ssh_key_password, ssh_config_file, ...): pyinfra checks them.
CONNECTOR_KEYS = set(ConnectorData.__annotations__) - set(InventoryData.model_fields)
InventoryKeys = create_model("InventoryKeys", __base__=InventoryData,
                             **{key: (Any, None) for key in sorted(CONNECTOR_KEYS)})


@lru_cache(maxsize=None)
def host_model(data_models: tuple) -> type:
    """The schema of a host whose roles declare these RoleData models (base's first)."""
    return create_model("HostData", __base__=(InventoryKeys, *data_models))


def check_host(name: str, data_models: tuple, data: dict, known_keys: set, in_role_group: bool) -> list:
    """Every problem of one host's merged data (role defaults, group_data, inventory), as DataErrors.

    The host's own roles' keys are validated; any other key must be one some role reads
    (`known_keys`): group_data/all.py may hold the nodes' keys, but not a misspelt one.
    """
    model = host_model(data_models)
    errors = [DataError(name, repr(key), data[key], "is not a key (keys are names)", "write the key as a name")
              for key in data if not isinstance(key, str)]
    keys = [key for key in data if isinstance(key, str)]
    own = {key: data[key] for key in keys if key in model.model_fields}
    unknown = sorted(key for key in keys if key not in known_keys and key not in model.model_fields
                     and key not in PERMITTED_ARGUMENTS and not key.startswith(SITE_PREFIX))
    errors += [unknown_key(name, key, data[key], known_keys | set(model.model_fields)) for key in unknown]
    if in_role_group and data.get("cluster_ip") is None:
        errors.append(DataError(name, "cluster_ip", None, "is not set; the exports, Vault and time rely on it",
                                "set the host's cluster_ip (its address on the cluster network) in the inventory"))
    if data.get("ssh_strict_host_key_checking") is None:
        errors.append(DataError(name, "ssh_strict_host_key_checking", None,
                                "is not set; pyinfra would then trust a new host key on first use",
                                "set ssh_strict_host_key_checking = 'yes' (the host's key in ssh_known_hosts_file)"))
    try:
        model.model_validate(own)
    except ValidationError as error:
        errors += problems(name, error, model.model_fields, field_names(model))
    return errors
