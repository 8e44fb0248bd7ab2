"""tos-node-api: what a gateway may ask of a node, behind the node's mutual-TLS nginx (roles/node_api.py)."""
