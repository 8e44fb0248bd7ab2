"""The Docker Engine API on dockerd's socket: one HTTP request where the docker command costs a
Go program's start-up (1-1.5 s per call under the lab's emulation; the idle policy asks every
30 s for every tenant)."""

import http.client
import json
import socket
from urllib.parse import quote

from .errors import NodeError

SOCKET = "/run/docker.sock"


class NotFound(NodeError):
    """The API answered 404: no such container (or object)."""


class _UnixConnection(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(self.timeout)
        self.sock.connect(SOCKET)


def call(method: str, path: str, timeout: float = 60):
    """One API call; its JSON body, if any. Fails closed: a dockerd that does not answer is an error."""
    connection = _UnixConnection("localhost", timeout=timeout)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        body = response.read().decode(errors="replace")
    except TimeoutError:
        raise NodeError(f"dockerd took over {timeout} s to answer {method} {path}; it may still be at it: "
                        f"check `docker ps -a` and `journalctl -u docker`") from None
    except (OSError, http.client.HTTPException) as e:
        raise NodeError(f"dockerd does not answer on {SOCKET} ({e!r}); check `systemctl status docker`") from None
    finally:
        connection.close()
    if response.status == 404:
        raise NotFound(f"docker {method} {path}: {body.strip()}")
    if response.status >= 300:
        raise NodeError(f"docker {method} {path} failed: {response.status} {body.strip()}")
    try:
        return json.loads(body) if body.strip() else None
    except ValueError:
        raise NodeError(f"docker {method} {path}: not JSON: {body[:200]!r}") from None


def container(name: str) -> dict | None:
    """The container's inspect document, or None if there is no such container."""
    try:
        return call("GET", f"/containers/{quote(name, safe='')}/json")
    except NotFound:
        return None
