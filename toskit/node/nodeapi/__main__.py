"""tos-node-api [--socket PATH]: serve the node API on a unix socket (run by systemd: tos-node-api.service)."""

import logging
import sys

import uvicorn

from .app import application

SOCKET = "/run/tos-node-api/api.sock"


def main(argv: list | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    path = argv[argv.index("--socket") + 1] if "--socket" in argv[:-1] else SOCKET
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # to the journal: systemd stamps it
    # No proxy headers and no client addresses: nginx alone connects, and it has authenticated the gateway.
    # asyncio's loop, not uvloop (Debian's uvicorn picks it when installed): uvloop's subprocesses
    # refuse the group and umask that app.py drops for tos-session (seen on the lab: ValueError).
    uvicorn.run(application(), uds=path, loop="asyncio", access_log=False, server_header=False,
                proxy_headers=False, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
