"""The broker (toskit/gateway/portal/broker.py) against stand-in nodes on this machine's loopback (real
TLS 1.3, client certificate required): it places a session by the nodes' reports and asks the chosen
node for the change; two sign-ins of one tenant at once end with one session; a renewed client
certificate is used at once."""

import asyncio
import copy
import os
import shutil

import pytest
from cluster_doors import REPORT, NodeState, make_pki, serve

from toskit.gateway.portal.broker import Broker, Unavailable
from toskit.gateway.portal.settings import BrokerAccess, NodeDoor, Tenant

ACME = Tenant("acme", True, {}, memory=1 << 30)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def node(pki, name: str, available_gib: int, delay: float = 0.0, **session) -> tuple:
    report = copy.deepcopy(REPORT)
    report["node"] = name
    report["memory"]["available_bytes"] = available_gib << 30
    report["sessions"][0].update(session)
    state = NodeState(report, delay)
    return state, NodeDoor(name, "127.0.0.1", serve(pki, name, state=state))


def broker(pki, *doors, client="gateway.pem") -> Broker:
    return Broker(BrokerAccess(str(pki / "ca.pem"), str(pki / client), tuple(doors)))


def test_a_stopped_session_starts_on_the_node_with_most_room_and_only_there(pki):
    (small, small_door), (big, big_door) = node(pki, "node1", 2), node(pki, "node2", 3)
    placed = asyncio.run(broker(pki, small_door, big_door).open(ACME))
    assert (placed.decision.action, placed.decision.node) == ("start", "node2")
    assert placed.done == "start acme: done"
    assert big.changes == [("start", "acme")] and small.changes == []


def test_a_hibernated_session_is_restored_and_a_paused_one_resumed_where_it_is(pki):
    (state, door) = node(pki, "node1", 3, state="hibernated")
    assert asyncio.run(broker(pki, door).open(ACME)).decision.action == "restore"
    assert state.changes == [("restore", "acme")]
    (other, other_door), (holder, holder_door) = node(pki, "node1", 3), node(
        pki, "node2", 1, here="paused", volume="open", state="paused", lease="node2")
    placed = asyncio.run(broker(pki, other_door, holder_door).open(ACME))
    assert (placed.decision.action, placed.decision.node) == ("resume", "node2")
    assert holder.changes == [("resume", "acme")] and other.changes == []


def test_a_running_session_is_attached_and_nothing_is_asked_of_its_node(pki):
    state, door = node(pki, "node1", 3, here="running", volume="open", state="running", lease="node1")
    placed = asyncio.run(broker(pki, door).open(ACME))
    assert (placed.decision.action, placed.done) == ("attach", "") and state.changes == []


def test_two_sign_ins_of_one_tenant_at_once_end_with_one_session(pki):
    (first, first_door), (second, second_door) = node(pki, "node1", 3, delay=0.5), node(pki, "node2", 3, delay=0.5)
    brokered = broker(pki, first_door, second_door)

    async def both():
        return await asyncio.gather(brokered.open(ACME), brokered.open(ACME))
    one, other = asyncio.run(both())
    assert first.changes + second.changes == [("start", "acme")]  # one start on one node
    assert sorted([one.decision.action, other.decision.action]) == ["attach", "start"]
    assert one.decision.node == other.decision.node


def test_no_node_that_can_take_it_is_unavailable_and_names_why(pki):
    _, door = node(pki, "node1", 0)
    with pytest.raises(Unavailable, match="no node can take the session now"):
        asyncio.run(broker(pki, door).open(ACME))


def test_a_renewed_client_certificate_is_used_at_once_and_a_missing_one_is_unavailable(pki, tmp_path):
    _, door = node(pki, "node1", 3)
    client = tmp_path / "cluster-client.pem"
    shutil.copy(pki / "gateway.pem", client)
    brokered = Broker(BrokerAccess(str(pki / "ca.pem"), str(client), (door,)))
    first = brokered.context()
    assert brokered.context() is first  # unchanged file: the same context
    shutil.copy(pki / "node9.pem", client)  # renewed (here: another certificate, so the test can tell)
    os.utime(client, ns=(os.stat(client).st_atime_ns, os.stat(client).st_mtime_ns + 1))
    assert brokered.context() is not first
    client.unlink()
    with pytest.raises(Unavailable, match="no client certificate towards the nodes"):
        asyncio.run(brokered.open(ACME))
