"""One table of every data key's default, built once: the data_defaults of every role's @deploy.

A role reads a key another role owns (sessions: hibernation_after; storage: the runtime's
docker_subid_start) from this table, never by importing that role. It starts with the shared
library's keys (the tenants, toskit/tenants.py); roles/__init__.py adds each role's DEFAULTS
once every role is imported. Each key has one owner, whose name it carries
(tests/unit/test_base_role_data.py).
"""

from .tenants import TenantsData

# Not empty when the roles' decorators see it: pyinfra ignores falsy data_defaults.
ALL_DEFAULTS: dict = TenantsData.defaults()
