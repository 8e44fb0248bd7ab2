"""The roles. Each module has DEFAULTS (every key documented) and check_data(host, data), which
`toskit.check` runs for every host before a deploy contacts any of them."""

from . import base, quotas, runtime, sessions, storage, storage_server, vault

ROLES = [base, runtime, quotas, sessions, storage_server, storage, vault]
