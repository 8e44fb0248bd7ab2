"""Programs the gateway role installs on the gateways (tos-gateway: its certificate from Vault; tos-portal: the Level-0 view and sign-in)."""

from pathlib import Path

TOOL_SOURCE = Path(__file__).resolve().parent / "tos-gateway"
PORTAL_SOURCE = Path(__file__).resolve().parent / "portal"  # the tos_portal package (roles/portal.py bundles it)
