"""Debian's nginx as the roles use it (the gateway's front door, a node's door for the gateways):
one site of ours on, Debian's default site off, nginx running and reloaded, never restarted."""

from pyinfra.operations import files, server, systemd
from pyinfra.operations.util import any_changed

DEBIAN_DEFAULT_SITE = "/etc/nginx/sites-enabled/default"


def site_path(name: str) -> str:
    return f"/etc/nginx/sites-available/{name}"


def site_on(name: str, site, *also) -> None:
    """Site `name` (its file written by the operation `site`) on, and nginx reloaded when it, or any
    operation of `also` (a certificate, a CA; None: none), changed: connections are kept."""
    enabled = files.link(name=f"nginx: site {name} on", path=f"/etc/nginx/sites-enabled/{name}", target=site_path(name))
    # A link Debian's package makes, listening on every address (also on a first deploy, after the
    # plan saw no nginx: so the reload, which our new site brings about then, removes it too).
    default = files.link(name="nginx: Debian's default site off", path=DEBIAN_DEFAULT_SITE, present=False)
    systemd.service(name="Run nginx", service="nginx.service", running=True, enabled=True)
    server.shell(name="Reload nginx for its new configuration (connections kept)",
                 commands=[f"rm -f {DEBIAN_DEFAULT_SITE} && nginx -t -q && systemctl reload nginx"],
                 _if=any_changed(site, enabled, default, *[op for op in also if op is not None]))
