"""Programs the gateway role installs on the gateways (tos-gateway: its certificate from Vault)."""

from pathlib import Path

TOOL_SOURCE = Path(__file__).resolve().parent / "tos-gateway"
