"""A host's whole schema: the inventory's own keys, then base's and those of the host's roles.

A key no role reads is refused (a typo such as `sshd_prot` would otherwise be ignored); keys of
the site's own start with `site_` and are left alone.
"""

from functools import lru_cache
from typing import Any

from pydantic import ValidationError, create_model
from pyinfra.api.arguments import all_global_arguments
from pyinfra.connectors.ssh import ConnectorData

from .errors import SITE_PREFIX
from .model import RoleData, field_names, problems, unknown_key
from .types import IPAddress, Optional

# pyinfra's own keys: how it connects (ssh_*) and its global arguments (_sudo, ...). pyinfra
# checks their values; here only their names are known.
CONNECTOR_KEYS = list(ConnectorData.__annotations__)
GLOBAL_ARGUMENT_KEYS = frozenset(name for name, _ in all_global_arguments() if name.startswith("_"))

InventoryData = create_model(
    "InventoryData", __base__=RoleData,
    # The host's address on the cluster's private network: NFS exports, Vault's CIDR, time.
    cluster_ip=(Optional[IPAddress], None),
    **{key: (Any, None) for key in CONNECTOR_KEYS},
)


@lru_cache(maxsize=None)
def host_model(data_models: tuple) -> type:
    """The schema of a host whose roles declare these RoleData models (base's first)."""
    return create_model("HostData", __base__=(InventoryData, *data_models))


def check_host(name: str, data_models: tuple, data: dict, known_keys: set) -> list:
    """Every problem of one host's merged data (role defaults, group_data, inventory), as DataErrors.

    The host's own roles' keys are validated; any other key must be one some role reads
    (`known_keys`): group_data/all.py may hold the nodes' keys, but not a misspelt one.
    """
    model = host_model(data_models)
    own = {key: value for key, value in data.items() if key in model.model_fields}
    unknown = sorted(key for key in data if key not in known_keys and key not in GLOBAL_ARGUMENT_KEYS
                     and key not in model.model_fields and not key.startswith(SITE_PREFIX))
    errors = [unknown_key(name, key, data[key], known_keys | set(model.model_fields)) for key in unknown]
    try:
        model.model_validate(own)
    except ValidationError as error:
        errors += problems(name, error, model.model_fields, field_names(model))
    return errors
