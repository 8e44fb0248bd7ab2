# Data for the lab's hosts only (the group pyinfra names after inventories/lab.py).
# Two tenants with small quotas, so the audits can fill them up on lab-sized guests.
tenants = [
    {"id": "acme", "quotas": {"cpu": 0.5, "memory": "256M", "pids": 128,
                              "disk_read": "20M", "disk_write": "10M", "volume_size": "256M"}},
    {"id": "beta", "quotas": {"cpu": 0.5, "memory": "256M", "pids": 128,
                              "disk_read": "20M", "disk_write": "10M", "volume_size": "256M"},
     "hibernate_after": "20s"},  # short, so the lab tests see the idle policy hibernate it
]

# The idle policy's timer stays off in the lab: the audits drive sessions without a client, and
# the policy would pause them under the audits' feet. test_4 runs its unit (the same command) itself.
session_idle_policy = False
