"""tos-portal [--settings FILE]: serve the portal on 127.0.0.1 (run by systemd: tos-portal.service).
Settings: /etc/tos/portal.json, written by the deploy."""

import logging
import sys
from pathlib import Path

import uvicorn

from .app import Portal
from .settings import SETTINGS, load


def main(argv: list | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    path = Path(argv[argv.index("--settings") + 1]) if "--settings" in argv[:-1] else SETTINGS
    try:
        settings = load(path)
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"tos-portal: cannot read {path} ({e}); run the deploy", file=sys.stderr)
        return 1
    # No access log: a callback's URL holds a code and a state. No proxy headers: the portal
    # names no client by address.
    uvicorn.run(Portal(settings).application(), host="127.0.0.1", port=settings.listen_port,
                access_log=False, server_header=False, proxy_headers=False, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
