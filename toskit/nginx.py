"""Debian's nginx as the roles use it (the gateway's front door, a node's door for the gateways):
one site of ours on, Debian's default site off, nginx running and reloaded, never restarted; a
reload returns once the new configuration is served (toskit/tos-nginx-reload)."""

from pathlib import Path

from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

from . import operations
from .templating import TEMPLATES

DEBIAN_DEFAULT_SITE = "/etc/nginx/sites-enabled/default"
RELOAD_TOOL_SOURCE = Path(__file__).resolve().parent / "tos-nginx-reload"
RELOAD_TOOL = "/usr/local/sbin/tos-nginx-reload"
RELOAD_DROP_IN = "/etc/systemd/system/nginx.service.d/tos-reload.conf"


def site_path(name: str) -> str:
    return f"/etc/nginx/sites-available/{name}"


def site_on(name: str, site, *also) -> None:
    """Site `name` (its file written by the operation `site`) on, and nginx reloaded when it, or any
    operation of `also` (a certificate, a CA; None: none), changed: connections are kept."""
    enabled = files.link(name=f"nginx: site {name} on", path=f"/etc/nginx/sites-enabled/{name}", target=site_path(name))
    # A link Debian's package makes, listening on every address (also on a first deploy, after the
    # plan saw no nginx: so the reload, which our new site brings about then, removes it too).
    default = files.link(name="nginx: Debian's default site off", path=DEBIAN_DEFAULT_SITE, present=False)
    operations.put(name="Install tos-nginx-reload", src=str(RELOAD_TOOL_SOURCE), dest=RELOAD_TOOL, mode="755")
    drop_in = operations.template(name="nginx: a reload waits until the new configuration is served",
                                  src=TEMPLATES / "nginx" / "tos-reload.conf.j2", dest=RELOAD_DROP_IN,
                                  tool=RELOAD_TOOL)
    systemd.daemon_reload(name="Load nginx's reload drop-in", _if=drop_in.did_change)
    systemd.service(name="Run nginx", service="nginx.service", running=True, enabled=True)
    server.shell(name="Reload nginx for its new configuration (connections kept)",
                 commands=[f"rm -f {DEBIAN_DEFAULT_SITE} && nginx -t -q && systemctl reload nginx"],
                 _if=any_changed(site, enabled, default, *[op for op in also if op is not None]))
