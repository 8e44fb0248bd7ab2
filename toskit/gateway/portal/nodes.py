"""The broker's side of the hop gateway -> node: every node's report, asked at once over mutual
TLS 1.3 (roles/node_api.py is the other side), each node given a few seconds: a node that does not
answer in time is passed over by placement, never waited on.

The node is reached at its cluster address and checked by its name: its certificate must be the
cluster CA's, for that name (SNI and the hostname check both use it), so an address taken over by
another host, or a certificate of the browsers' CA, fails the handshake.
"""

import asyncio
import ssl

import httpx
from websockets.asyncio.client import ClientConnection, connect

from .placement import NodeReport
from .settings import NODE_TIMEOUT, NodeDoor

# Seconds the broker waits for a session change: the node's own limit (toskit/node/nodeapi
# CHANGE_TIMEOUT) and a little more, so the node's answer, even a timeout, arrives first.
CHANGE_TIMEOUT = {"start": 330.0, "restore": 630.0, "resume": 90.0, "pause": 90.0}


class NodeRefused(Exception):
    """A node did not make the change; the message says which node and why."""


def tls_context(cluster_ca: str, client_pem: str) -> ssl.SSLContext:
    """TLS 1.3 only, nodes checked against the cluster CA, this gateway's client certificate
    (key and chain in one file) presented."""
    context = ssl.create_default_context(cafile=cluster_ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(client_pem)
    return context


def _url(door: NodeDoor, path: str) -> str:
    return f"https://{door.address}:{door.port}/v1/{path}"


def _by_name(door: NodeDoor) -> dict:
    return {"headers": {"Host": door.name}, "extensions": {"sni_hostname": door.name}}


async def report(client: httpx.AsyncClient, door: NodeDoor, tenant: str | None = None) -> NodeReport:
    answer = await client.get(_url(door, "report" + (f"/{tenant}" if tenant else "")), **_by_name(door))
    answer.raise_for_status()
    return NodeReport.model_validate(answer.json())


async def change(context: ssl.SSLContext, door: NodeDoor, verb: str, tenant: str) -> str:
    """Asks the node to start, restore, resume or pause the tenant's session and waits for it to be
    done (CHANGE_TIMEOUT); the node's own account of it, or NodeRefused."""
    timeout = CHANGE_TIMEOUT[verb]
    try:
        async with httpx.AsyncClient(verify=context, timeout=timeout, trust_env=False) as client:
            answer = await client.post(_url(door, f"sessions/{tenant}/{verb}"), **_by_name(door))
    except httpx.HTTPError as e:
        raise NodeRefused(f"{door.name}: {verb} {tenant}: {type(e).__name__}: {e}") from None
    try:
        body = answer.json()
    except ValueError:
        body = {}
    if answer.status_code != 200:
        raise NodeRefused(f"{door.name}: {verb} {tenant}: HTTP {answer.status_code}: {body.get('error', answer.text[:200])}")
    return str(body.get("done", ""))


async def reports(doors: list, context: ssl.SSLContext, tenant: str | None = None,
                  timeout: float = NODE_TIMEOUT) -> dict:
    """{node name: its NodeReport, or the exception that asking it ended with (timeouts included)}."""
    async with httpx.AsyncClient(verify=context, timeout=timeout, trust_env=False) as client:
        async def one(door):
            return await asyncio.wait_for(report(client, door, tenant), timeout)
        results = await asyncio.gather(*(one(door) for door in doors), return_exceptions=True)
    return {door.name: result for door, result in zip(doors, results)}


async def channel(context: ssl.SSLContext, door: NodeDoor, tenant: str,
                  timeout: float = NODE_TIMEOUT) -> ClientConnection:
    """The running session's channel on that node (a WebSocket through its node API), opened within
    `timeout`; OSError, TimeoutError or websockets' InvalidHandshake (the node refused: its close code
    says why) if not."""
    return await connect(f"wss://{door.address}:{door.port}/v1/sessions/{tenant}/channel", ssl=context,
                         server_hostname=door.name, proxy=None, compression=None, open_timeout=timeout)
