"""node_api: the one door a gateway has into a node (issue 11's hop gateway -> node).

nginx from Debian listens on the node's cluster address only, TLS 1.3 only, and requires a client
certificate from the cluster CA (vault_cluster_pki_mount) that names a gateway (CN tos-gateway-*):
no certificate, one of the gateways' browser-facing CA or a node's own (server use only) get HTTP 400
and nothing else, another name of the cluster CA 403, TLS 1.2 fails the handshake. Behind it,
tos-node-api (starlette, uvicorn: Debian's) on a unix socket only nginx's group can open, mapping
each verb to a fixed tos-session command (no shell, no root shell for the gateway). Why not an ssh
forced command: the session channel (WebSocket) needs a TLS listener on the node anyway, so one
listener, one CA and one audit serve both. Sessions cannot
reach it: the tenant firewall refuses anything a session sends to its node or to the cluster
(tos-net-01, tos-net-02). One switch: node_api_enabled.
"""

from io import BytesIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

from toskit import nginx, operations
from toskit.bundle import zipapp
from toskit.defaults import ALL_DEFAULTS
from toskit.host_certificates import CERTIFICATE_DIR, CLUSTER_CA, put_cluster_ca
from toskit.node.nodeapi import CHANGE_TIMEOUT
from toskit.session_image import NODE_PROGRAMS
from toskit.schema import RoleData
from toskit.schema.types import NonEmpty, PackageName, Switch, whole
from toskit.templating import TEMPLATES

PACKAGES_KEY = "node_api_packages"
BUNDLE = "/usr/local/lib/tos/tos-node-api.pyz"
UNIT = "/etc/systemd/system/tos-node-api.service"
SITE = nginx.site_path("tos-node-api")
CERTIFICATE = f"{CERTIFICATE_DIR}/cluster.pem"  # the node's own (roles/vault.py has it signed)


class Data(RoleData):
    # The node API (gateways ask nodes for reports and, with the broker, session changes); False:
    # no listener on the node, and no broker can place sessions there.
    node_api_enabled: Switch = True
    # What it runs on (Debian's): the TLS terminator, the web framework and server behind it, and the
    # WebSocket library that carries session channels (uvicorn's and the relay's to the agent).
    node_api_packages: NonEmpty(PackageName) = ["nginx", "python3-starlette", "python3-uvicorn", "python3-websockets"]
    # Its port on the node's cluster address.
    node_api_port: whole(1, 65535) = 7443


DEFAULTS = Data.defaults()


def bundle() -> bytes:
    return zipapp(b"import sys\nfrom tos_node_api.__main__ import main\nsys.exit(main())\n", "tos_node_api",
                  NODE_PROGRAMS / "nodeapi")


@deploy("TOS node API", data_defaults=ALL_DEFAULTS)
def node_api():
    Data.check(host.name, host.data)
    data = host.data
    if not data.node_api_enabled:  # nginx off too: nothing else on a node serves through it
        for service in ("tos-node-api.service", "nginx.service"):
            systemd.service(name=f"No node API: {service} off (node_api_enabled is False)", service=service,
                            running=False, enabled=False, _ignore_errors=True)
        for path in (UNIT, "/etc/nginx/sites-enabled/tos-node-api", SITE):
            files.file(name=f"No node API: {path}", path=path, present=False)
        return
    ca = put_cluster_ca(data)
    program = operations.put(name="Install tos-node-api", src=BytesIO(bundle()), dest=BUNDLE, mode="644")
    unit = operations.template(name="tos-node-api service (root, unix socket for nginx only)",
                               src=TEMPLATES / "node-api" / "tos-node-api.service.j2", dest=UNIT, bundle=BUNDLE)
    systemd.daemon_reload(name="Load the node API's unit", _if=unit.did_change)
    systemd.service(name="Run tos-node-api", service="tos-node-api.service", running=True, enabled=True)
    server.shell(name="Restart tos-node-api for its new program", commands=["systemctl restart tos-node-api"],
                 _if=any_changed(program, unit))
    site = operations.template(name="nginx: TLS 1.3 only, a gateway's client certificate required",
                               src=TEMPLATES / "node-api" / "nginx-tos-node-api.conf.j2", dest=SITE,
                               address=data.cluster_ip, port=data.node_api_port, certificate=CERTIFICATE,
                               cluster_ca=CLUSTER_CA, change_timeout=max(CHANGE_TIMEOUT.values()) + 15)
    nginx.site_on("tos-node-api", site, ca)
