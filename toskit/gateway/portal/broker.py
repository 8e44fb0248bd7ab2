"""The broker: after sign-in, a person's tenant session brought up on a node, and where it is.

It asks every node for its report (nodes.reports, mutual TLS 1.3, at once, each within the
report timeout: portal_node_timeout), lets placement decide (attach, resume, restore or start, and
where), then asks that node for the change and waits for it (nodes.change). Two sign-ins of one tenant at once take turns on one lock per
tenant here, and the second finds the first one's session running; across gateways, a volume is
opened by one node at a time (its lease), so they still end with one session.
"""

import asyncio
import logging
import os
import ssl
from dataclasses import dataclass

from . import nodes
from .placement import Decision, NotNow, decide
from .settings import BrokerAccess, NodeDoor, Tenant

log = logging.getLogger("tos-portal.broker")


@dataclass(frozen=True)
class Placed:
    decision: Decision
    door: NodeDoor  # the node the session runs on now
    done: str  # the node's account of the change ("" when attaching: nothing changed)


class Unavailable(Exception):
    """The session cannot be brought up now; the message is for the log (it names nodes)."""


class Broker:
    def __init__(self, access: BrokerAccess):
        self.access = access
        self._locks: dict = {}
        self._last_door: dict = {}  # tenant id -> the node its session was last brought up on (a hint)
        self._context: ssl.SSLContext | None = None
        self._context_files: tuple | None = None

    def context(self) -> ssl.SSLContext:
        """The TLS context towards the nodes, made again when tos-cert renewed the client certificate
        (or the cluster CA changed): a running portal never presents an expired one."""
        files = tuple(os.stat(path).st_mtime_ns for path in (self.access.client_certificate, self.access.cluster_ca))
        if files != self._context_files:
            self._context = nodes.tls_context(self.access.cluster_ca, self.access.client_certificate)
            self._context_files = files
        return self._context

    async def open(self, tenant: Tenant) -> Placed:
        lock = self._locks.setdefault(tenant.id, asyncio.Lock())
        async with lock:
            try:
                context = self.context()
            except (OSError, ssl.SSLError) as e:
                raise Unavailable(f"no client certificate towards the nodes ({e}); `tos-cert status` on "
                                  f"this gateway") from None
            reports = await nodes.reports(list(self.access.nodes), context, tenant.id, self.access.report_timeout)
            for name, answer in reports.items():
                if isinstance(answer, Exception):
                    log.warning("node %s did not report: %s", name, f"{type(answer).__name__}: {answer}")
            try:
                decision = decide(tenant.id, tenant.memory, reports)
            except NotNow as e:
                raise Unavailable(str(e)) from None
            door = next(d for d in self.access.nodes if d.name == decision.node)
            done = ""
            if decision.action != "attach":
                try:
                    done = await nodes.change(context, door, decision.action, tenant.id)
                except nodes.NodeRefused as e:
                    raise Unavailable(str(e)) from None
            log.info("session of %s: %s on %s (%s)%s", tenant.id, decision.action, decision.node, decision.why,
                     f": {done}" if done else "")
            self._last_door[tenant.id] = door
            return Placed(decision, door, done)

    def last_door(self, tenant_id: str) -> NodeDoor | None:
        """Where this broker last brought the tenant's session up: where its channels try first,
        without asking every node. Only a hint: a node that no longer runs it refuses the channel."""
        return self._last_door.get(tenant_id)
