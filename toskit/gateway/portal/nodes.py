"""The broker's side of the hop gateway -> node: every node's report, asked at once over mutual
TLS 1.3 (roles/node_api.py is the other side), each node given a few seconds: a node that does not
answer in time is passed over by placement, never waited on.

The node is reached at its cluster address and checked by its name: its certificate must be the
cluster CA's, for that name (SNI and the hostname check both use it), so an address taken over by
another host, or a certificate of the browsers' CA, fails the handshake.
"""

import asyncio
import ssl
from dataclasses import dataclass

import httpx

from .placement import NodeReport

TIMEOUT = 2.0  # seconds for one node's whole answer; a node this slow is skipped


@dataclass(frozen=True)
class NodeDoor:
    name: str      # the node's name, as its certificate names it
    address: str   # its cluster address
    port: int      # node_api_port


def tls_context(cluster_ca: str, client_pem: str) -> ssl.SSLContext:
    """TLS 1.3 only, nodes checked against the cluster CA, this gateway's client certificate
    (key and chain in one file) presented."""
    context = ssl.create_default_context(cafile=cluster_ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(client_pem)
    return context


async def report(client: httpx.AsyncClient, door: NodeDoor, tenant: str | None = None) -> NodeReport:
    url = f"https://{door.address}:{door.port}/v1/report" + (f"/{tenant}" if tenant else "")
    answer = await client.get(url, headers={"Host": door.name}, extensions={"sni_hostname": door.name})
    answer.raise_for_status()
    return NodeReport.model_validate(answer.json())


async def reports(doors: list, context: ssl.SSLContext, tenant: str | None = None,
                  timeout: float = TIMEOUT) -> dict:
    """{node name: its NodeReport, or the exception that asking it ended with (timeouts included)}."""
    async with httpx.AsyncClient(verify=context, timeout=timeout, trust_env=False) as client:
        async def one(door):
            return await asyncio.wait_for(report(client, door, tenant), timeout)
        results = await asyncio.gather(*(one(door) for door in doors), return_exceptions=True)
    return {door.name: result for door, result in zip(doors, results)}
