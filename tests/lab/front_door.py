"""The lab's front door as a browser on this machine reaches it: each gateway's forwarded HTTPS port, the
name its certificate carries, and the CAs a browser must trust (the lab's, for OpenBao's login page,
and Vault's gateway CA)."""

from labtools import CONFIG

from toskit.lab.config import GATEWAY_SERVER_NAME
from toskit.lab.vault import LabVault

GATEWAYS = [h for h in CONFIG.hosts if h.group == "gateways"]
VAULT = LabVault(CONFIG)


def portal_url(gateway) -> str:
    return f"https://{GATEWAY_SERVER_NAME}:{gateway.https_port}"


def trusted() -> dict:
    """What the browser trusts: the lab's CA (OpenBao's certificate) and Vault's gateway CA."""
    return {"tos-lab": VAULT.ca_file.read_text(),
            "tos-gateways": VAULT.root_client().secrets.pki.read_ca_certificate(mount_point="pki")}
