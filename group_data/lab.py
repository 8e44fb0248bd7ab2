# Data for the lab's hosts only (the group pyinfra names after inventories/lab.py).
# Small quotas, so the audits can fill them up on lab-sized guests; four tenants, so each node's
# audits attack a pair of their own, both nodes at once (tests/audit/conftest.py: audit_pair).
# The volume and network rates sit below what the lab's emulated guests reach (an encrypted
# volume writes ~3-4 MiB/s and reads ~5-7; qemu's user network carries ~1-2 MiB/s), so the
# audits see them bind.
tenant_quota_defaults = {"cpu": 0.5, "memory": "256M", "swap": 0, "pids": 128, "disk_read": "20M",
                         "disk_write": "10M", "volume_read": "2M", "volume_write": "1M",
                         "network_in": "256K", "network_out": "256K", "volume_size": "256M"}
# Each node's audit pair (A, B) is (acme, beta) and (gamma, delta): B may reach the lab's stand-in
# for an outside destination (qemu answers it: toskit/lab/config.py GUEST_OUTSIDE), A may not.
site_lab_outside = [{"network": "10.0.2.200/32", "ports": [8080, 8081, 8082]}]
# people: who signs in to each at the lab's gateway, through the lab's own provider (OpenBao,
# toskit/lab/identity.py makes a userpass person for each address).
tenants = [
    {"id": "acme", "people": {"lab": ["alice@acme.test"]}},
    # beta is test_4's: 20s, so the idle policy hibernates it within the test; probed every 5 s (30 s
    # elsewhere), so every hibernation there checkpoints a session Docker would be probing
    # (tos-session keeps probes out). A probe is a `docker exec`, seconds of CPU under TCG (two
    # sessions probed every 5 s kept an idle node ~40% busy), so the other tenants keep the default.
    {"id": "beta", "hibernate_after": "20s", "health_interval": "5s", "egress": site_lab_outside,
     "people": {"lab": ["bob@beta.test"]}},
    {"id": "gamma", "people": {"lab": ["carol@gamma.test"]}},
    # delta is dave's, whom test_2_broker walks away from his desktop: hibernated 20 s after the tab closed.
    {"id": "delta", "hibernate_after": "20s", "egress": site_lab_outside, "people": {"lab": ["dave@delta.test"]}},
]

# The idle policy's timer stays off in the lab: the audits drive sessions without a client, and
# the policy would pause them under the audits' feet. test_4 runs its unit (the same command) itself.
hibernation_idle_policy = False

# Under emulation a node's `tos-session report` takes ~2 s on an idle guest, more under load: the
# broker waits longer for it than on real hardware.
portal_node_timeout = "20s"
