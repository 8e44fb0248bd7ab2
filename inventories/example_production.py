"""Example production inventory: copy to inventories/production.py and fill in your hosts.

    pyinfra inventories/production.py deploy.py --dry     # the plan, nothing changed
    pyinfra inventories/production.py deploy.py           # deploy
    make audit INVENTORY=inventories/production.py        # prove it on the hosts

Hosts are (name, data) pairs; the name becomes the hostname. Group data lives in group_data/.
"""

# How the deploy and the audits reach every host. Host keys must already be in known_hosts:
# nothing is trusted on first use.
_ssh = {
    "ssh_user": "root",
    "ssh_key": "~/.ssh/tos_admin_ed25519",
    "ssh_known_hosts_file": "~/.ssh/known_hosts",
    "ssh_strict_host_key_checking": "yes",
}

storage = [
    ("storage1", {**_ssh, "ssh_hostname": "192.0.2.10", "cluster_ip": "192.0.2.10"}),
]

nodes = [
    ("node1", {**_ssh, "ssh_hostname": "192.0.2.21", "cluster_ip": "192.0.2.21"}),
    ("node2", {**_ssh, "ssh_hostname": "192.0.2.22", "cluster_ip": "192.0.2.22"}),
]

# The front door (optional): the hosts browsers reach. Their server name goes into group_data
# (gateway_server_name = "tos.example.org" in group_data/gateways.py) or here, per host.
gateways = [
    ("gateway1", {**_ssh, "ssh_hostname": "192.0.2.31", "cluster_ip": "192.0.2.31",
                  "gateway_server_name": "tos.example.org"}),
]
