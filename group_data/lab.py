# Data for the lab's hosts only (the group pyinfra names after inventories/lab.py).
# Two tenants with small quotas, so the audits can fill them up on lab-sized guests.
tenants = [
    {"id": "acme", "quotas": {"cpu": 0.5, "memory": "256M", "pids": 128,
                              "disk_read": "20M", "disk_write": "10M", "volume_size": "256M"}},
    {"id": "beta", "quotas": {"cpu": 0.5, "memory": "256M", "pids": 128,
                              "disk_read": "20M", "disk_write": "10M", "volume_size": "256M"}},
]
