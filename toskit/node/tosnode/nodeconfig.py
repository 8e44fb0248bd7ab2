"""This node's configuration, as the deploy wrote it into /etc/tos."""

import json
from dataclasses import dataclass
from pathlib import Path

from .errors import NodeError
from .vaultclient import VaultConfig


@dataclass(frozen=True)
class NodeConfig:
    name: str                # this node (leases and checkpoint states name it)
    share: Path              # where the NFS export is mounted
    share_unit: str          # its systemd mount unit (named by the deploy)
    mount_root: Path         # where opened volumes are mounted (tmpfs: only mount points)
    session_uid: int         # host uid of the session user (userns-remapped)
    vault: VaultConfig

    @classmethod
    def load(cls, etc: str = "/etc/tos") -> "NodeConfig":
        """node.json (storage role) and vault.json (vault role)."""
        node_json = _read(etc, "node.json", "storage")
        vault_json = _read(etc, "vault.json", "Vault credential")
        # share_unit: a node.json written before it was added names no unit; the next deploy does.
        return cls(node_json["node"], Path(node_json["share"]), node_json.get("share_unit", "the share's mount unit"),
                   Path(node_json["mount_root"]), node_json["session_uid"], VaultConfig.from_dict(vault_json))


def criu_staged(etc: str = "/etc/tos") -> Path:
    """Where the CRIU hook records the images containerd unpacked for a restore: hibernation.json
    (hibernation role, which renders the same path into the hook)."""
    return Path(_read(etc, "hibernation.json", "hibernation")["criu_staged"])


def criu_log(etc: str = "/etc/tos") -> Path:
    """criu's log file (runc.conf), where tos-session reads how long criu itself took. A node whose
    hibernation.json predates it has none: the steps then show the runtime's step whole."""
    return Path(_read(etc, "hibernation.json", "hibernation").get("criu_log", "/nonexistent"))


def _read(etc: str, name: str, what: str) -> dict:
    try:
        with open(f"{etc}/{name}") as f:
            return json.load(f)
    except FileNotFoundError:
        raise NodeError(f"{etc}/{name} is missing: this node's {what} is not set up; run the deploy") from None
