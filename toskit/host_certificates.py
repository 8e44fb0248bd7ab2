"""A host's TLS certificates from Vault's PKI, as the roles deploy them: tos-cert installed, its
settings (/etc/tos/certificates.json: which certificates, whose PKI role signs each), a timer that
renews each past two thirds of its life, and any certificate due now renewed by the deploy itself.
The host makes its keys; Vault signs CSRs (toskit/tos-cert). Used by the gateway role (its
browser-facing certificate, its client certificate towards the nodes) and the vault role (a node's
server certificate for the gateways' mutual TLS)."""

import json
from dataclasses import asdict, dataclass
from io import StringIO
from pathlib import Path

from pyinfra import host
from pyinfra.operations import files, python, server, systemd
from pyinfra.operations.util import any_changed

from . import operations
from .facts import HostCertificate
from .templating import TEMPLATES
from .vault_data import HOST_VAULT_CA

TOOL_SOURCE = Path(__file__).resolve().parent / "tos-cert"
TOOL = "/usr/local/sbin/tos-cert"
SETTINGS = "/etc/tos/certificates.json"
CERTIFICATE_DIR = "/etc/tos/tls"  # root only: each file holds a key and its chain (0600)
RENEWAL = "tos-cert-renew"
CLUSTER_CA = "/etc/tos/cluster-ca.pem"  # nodes check gateways' client certificates by it, gateways nodes'


@dataclass(frozen=True)
class Certificate:
    path: str
    pki_mount: str
    pki_role: str
    name: str            # its one name (CN and DNS SAN)
    ttl: str
    reload: str | None   # "nginx": the service reloaded when it is renewed
    group: str | None = None  # may read it (0640): a service that is not root uses it; None: 0600 root

    @classmethod
    def signed_by(cls, pki, path: str, reload: str | None, group: str | None = None) -> "Certificate":
        """The certificate a PKI role (toskit/vault_pki.PkiRole) signs for this host, kept at `path`."""
        return cls(path, pki.mount, pki.role, pki.common_name, pki.cert_ttl, reload, group)


def check_renewal(host_name: str, key: str, interval: str, certificates: dict) -> None:
    """The renewal timer (every `interval`, data key `key`) must come round well inside the last third
    of each certificate's life."""
    from .schema import DataError
    from .schema.types import duration_seconds
    for cert_id, cert in certificates.items():
        if duration_seconds(interval) + 60 >= duration_seconds(cert.ttl) / 3:
            raise DataError(host_name, key, interval,
                            f"leaves too little time to renew certificate {cert_id}, which lives {cert.ttl} "
                            f"(renewal starts past two thirds of its life)",
                            "set it below a third of the shortest certificate lifetime, e.g. 1h for 72h")


def certificates_json(vault_addr: str, vault_settings, certificates: dict) -> str:
    """/etc/tos/certificates.json: what tos-cert needs (no secret in it)."""
    return json.dumps({
        "vault_addr": vault_addr, "vault_ca_file": HOST_VAULT_CA if vault_settings.ca_file else None,
        "approle_mount": vault_settings.approle_mount,
        "certificates": {cert_id: asdict(c) for cert_id, c in certificates.items()},
    }, indent=2, sort_keys=True) + "\n"


def install(vault_addr: str, vault_settings, certificates: dict, renew_interval: str) -> None:
    """tos-cert, its settings and its renewal units (renew_due turns the timer on)."""
    files.directory(name="The certificates' folder (root only)", path=CERTIFICATE_DIR, user="root", group="root",
                    mode="700")
    operations.put(name="Settings of tos-cert", src=StringIO(certificates_json(vault_addr, vault_settings, certificates)),
                   dest=SETTINGS, mode="644")
    operations.put(name="Install tos-cert", src=str(TOOL_SOURCE), dest=TOOL, mode="755")
    service = operations.template(name="Certificate renewal service", src=TEMPLATES / f"{RENEWAL}.service.j2",
                                  dest=f"/etc/systemd/system/{RENEWAL}.service", certificate_dir=CERTIFICATE_DIR)
    timer = operations.template(name="Certificate renewal timer", src=TEMPLATES / f"{RENEWAL}.timer.j2",
                                dest=f"/etc/systemd/system/{RENEWAL}.timer", interval=renew_interval)
    systemd.daemon_reload(name="Load the renewal units", _if=any_changed(service, timer))


def renew_due(certificates: dict) -> dict:
    """Each certificate due for the name this deploy sets (a changed name is renewed now, not by the
    timer later), renewed now: {id: the operation, or None when none was due}. Then the timer on:
    started past its OnBootSec it runs at once, so only once the host is enrolled and renewed (else
    its run would race the deploy's enrolment and fail)."""
    ops = {}
    for cert_id, cert in certificates.items():
        due = host.get_fact(HostCertificate, tool=TOOL, certificate=cert_id, cert_name=cert.name)
        ops[cert_id] = None if due == "valid" else server.shell(
            name=f"Certificate {cert_id} from Vault ({due or 'none yet'})", commands=[f"{TOOL} renew {cert_id}"])
    renewal = bool(certificates)
    systemd.service(name=f"Renewal timer {'on' if renewal else 'off (no certificate from Vault here)'}",
                    service=f"{RENEWAL}.timer", running=renewal, enabled=renewal)
    return ops


def put_cluster_ca(data):
    """The cluster CA's certificate (public), read from Vault, put on the host. A new cluster's CA is
    made by this very deploy (its Vault step runs before): then it is read when the step has run."""
    from toskit.vault import VaultSettings
    from toskit.vault_pki import ca_pem
    settings = VaultSettings.from_data(host.name, data)
    pem = ca_pem(settings, settings.client(), data.vault_cluster_pki_mount)
    if pem:
        return operations.put(name="The cluster CA (the hop gateway -> node)", src=StringIO(pem), dest=CLUSTER_CA,
                              mode="644")
    return python.call(name="The cluster CA (the hop gateway -> node), made by this deploy",
                       function=_put_new_cluster_ca, settings=settings, mount=data.vault_cluster_pki_mount)


def _put_new_cluster_ca(state, host, settings, mount: str) -> None:
    from toskit.vault import VaultError
    from toskit.vault_pki import ca_pem
    pem = ca_pem(settings, settings.client(), mount)
    if not pem:
        raise VaultError(f"{host.name}: vault_cluster_pki_mount = {mount!r}: no CA there after the deploy's Vault "
                         f"step; check that the operator's token may write {mount}/ (templates/vault/tos-operator.hcl "
                         f"names the default mount) and deploy again")
    if not host.put_file(StringIO(pem), CLUSTER_CA):
        raise VaultError(f"{host.name}: could not upload {CLUSTER_CA} (see the deploy's log above); deploy again")
    ok, output = host.run_shell_command(f"chmod 644 {CLUSTER_CA}")
    if not ok:
        raise VaultError(f"{host.name}: chmod 644 {CLUSTER_CA} failed: {output.stderr}; deploy again")
