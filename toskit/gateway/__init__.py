"""Programs the gateway role installs on the gateways (tos-portal: the Level-0 view and sign-in;
their certificates: toskit/tos-cert, which nodes have too)."""

from pathlib import Path

PORTAL_SOURCE = Path(__file__).resolve().parent / "portal"  # the tos_portal package (roles/portal.py bundles it)
