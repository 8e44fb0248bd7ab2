"""tos-node-api: what a gateway may ask of a node, behind the node's mutual-TLS nginx (roles/node_api.py)."""

# Seconds each session change may take on the node (under emulation in the lab a small session's
# restore took up to ~160 s on a slow day). nginx waits a little longer (roles/node_api.py), the
# broker longer still (toskit/gateway/portal/nodes.py CHANGE_TIMEOUT).
CHANGE_TIMEOUT = {"start": 300, "restore": 600, "resume": 60, "pause": 60}
