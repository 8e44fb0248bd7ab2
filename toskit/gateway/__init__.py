"""Programs the gateway role installs on the gateways (tos-portal: the Level-0 view, sign-in and the
broker; their certificates: toskit/tos-cert, which nodes have too), and where they meet."""

from pathlib import Path

PORTAL_SOURCE = Path(__file__).resolve().parent / "portal"  # the tos_portal package (roles/portal.py bundles it)
# The gateway's client certificate towards the nodes (mutual TLS), kept by tos-cert for the broker
# (in the portal, which is not root): its folder and file readable by this group, and root.
BROKER_GROUP = "tos-broker"
BROKER_DIR = "/etc/tos/broker"
CLUSTER_CLIENT_CERTIFICATE = f"{BROKER_DIR}/cluster-client.pem"
