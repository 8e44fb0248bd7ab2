# Data for the `nodes` group: the hosts that run tenants' sessions.
# Every key is documented where it is defined: the roles (DEFAULTS), and toskit/tenants.py for the tenants.

# The tenants this site serves, each with quotas overriding tenant_quota_defaults, e.g.:
# tenants = [
#     {"id": "acme", "quotas": {"cpu": 2, "memory": "4G", "pids": 1024}},
#     {"id": "globex"},
# ]

# Hibernation (roles/hibernation.py) checkpoints sessions with `docker checkpoint`, which Docker 26
# offers only in experimental mode: a documented exception to CIS 2.18, reported as such by the audit.
docker_experimental = True
