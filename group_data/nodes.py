# Data for the `nodes` group: the hosts that run tenants' sessions.
# Every key is documented in roles/runtime.py and roles/quotas.py (DEFAULTS).

# The tenants this site serves, each with quotas overriding tenant_quota_defaults, e.g.:
# tenants = [
#     {"id": "acme", "quotas": {"cpu": 2, "memory": "4G", "pids": 1024}},
#     {"id": "globex"},
# ]
