"""The broker's placement (toskit/gateway/portal/placement.py), from node reports as tos-session writes them."""

import pytest
from pydantic import ValidationError

from toskit.gateway.portal.placement import NodeReport, NotNow, decide

MiB = 2**20


def node(name, available_mib=2048, drained=False, **sessions):
    """A node report; sessions: tenant=(here, volume, state, lease)."""
    return NodeReport.model_validate({
        "node": name, "drained": drained, "memory": {"total_bytes": 4096 * MiB, "available_bytes": available_mib * MiB},
        "sessions": [{"tenant": t, "here": here, "volume": volume, "state": state, "lease": lease, "checkpoint": None}
                     for t, (here, volume, state, lease) in sessions.items()]})


STOPPED = (None, "closed", "stopped", None)
HIBERNATED = (None, "closed", "hibernated", None)


@pytest.mark.parametrize("here, action", [("running", "attach"), ("paused", "resume")])
def test_a_live_session_is_joined_where_it_is_even_on_a_drained_node(here, action):
    reports = {"node1": node("node1", acme=STOPPED),
               "node2": node("node2", drained=True, acme=(here, "open", "running", "node2"))}
    assert decide("acme", 512 * MiB, reports).action == action
    assert decide("acme", 512 * MiB, reports).node == "node2"


@pytest.mark.parametrize("state, action", [(HIBERNATED, "restore"), (STOPPED, "start")])
def test_a_session_nowhere_goes_to_the_node_keeping_the_most_memory_free(state, action):
    reports = {"node1": node("node1", 1024, acme=state), "node2": node("node2", 3000, acme=state)}
    decision = decide("acme", 512 * MiB, reports)
    assert (decision.action, decision.node) == (action, "node2")
    assert "node2 keeps 2488 MiB free" in decision.why


def test_among_equals_the_node_with_fewer_sessions_then_the_name():
    busy = node("node1", beta=("running", "open", "running", "node1"), acme=STOPPED)
    assert decide("acme", 512 * MiB, {"node1": busy, "node2": node("node2", acme=STOPPED)}).node == "node2"
    assert decide("acme", 512 * MiB, {"node3": node("node3", acme=STOPPED),
                                      "node2": node("node2", acme=STOPPED)}).node == "node2"


@pytest.mark.parametrize("reason, node2", [
    ("drained", node("node2", 4000, drained=True, acme=STOPPED)),
    ("too little memory", node("node2", 100, acme=STOPPED)),
    ("silent", TimeoutError("no answer in 2 s")),
    ("not serving the tenant", node("node2", 4000, beta=STOPPED)),
])
def test_a_node_that_cannot_take_the_session_is_passed_over(reason, node2):
    reports = {"node1": node("node1", 1024, acme=STOPPED), "node2": node2}
    assert decide("acme", 512 * MiB, reports).node == "node1"


def test_no_room_anywhere_says_why_for_each_node():
    reports = {"node1": node("node1", 100, acme=STOPPED), "node2": node("node2", drained=True, acme=STOPPED),
               "node3": ConnectionRefusedError()}
    with pytest.raises(NotNow, match=r"acme: no node can take the session now \(node1: 100 MiB available, the "
                                     r"session may use 512 MiB; node2: drained; node3 did not answer\)"):
        decide("acme", 512 * MiB, reports)


def test_a_volume_held_by_a_node_that_answers_means_wait():
    reports = {"node1": node("node1", acme=(None, "open", "checkpointing", "node1")),
               "node2": node("node2", acme=(None, "leased", "elsewhere", "node1"))}
    with pytest.raises(NotNow, match="acme: node1 holds its volume \\(checkpointing\\); try again"):
        decide("acme", 512 * MiB, reports)


@pytest.mark.parametrize("state, action", [("running", "start"), ("checkpointed", "restore")])
def test_a_volume_open_on_a_node_without_a_live_session_is_brought_back_there(state, action):
    """Not "wait" for ever: the container exited (or the volume was opened by hand) and nothing is at work."""
    reports = {"node1": node("node1", 100, acme=("exited", "open", state, "node1")),
               "node2": node("node2", 4000, acme=(None, "leased", "elsewhere", "node1"))}
    decision = decide("acme", 512 * MiB, reports)
    assert (decision.action, decision.node) == (action, "node1")


def test_a_volume_held_by_a_silent_node_is_never_taken_over_by_the_broker():
    reports = {"node1": TimeoutError(), "node2": node("node2", acme=(None, "leased", "elsewhere", "node1"))}
    with pytest.raises(NotNow, match="leased by node1, which does not answer; an operator .* --take-over"):
        decide("acme", 512 * MiB, reports)


def test_no_answering_node_serves_the_tenant():
    with pytest.raises(NotNow, match=r"no answering node serves this tenant \(node1 did not answer\)"):
        decide("acme", 512 * MiB, {"node1": OSError(), "node2": node("node2", beta=STOPPED)})


def test_a_report_without_what_placement_needs_is_refused_and_extra_keys_are_ignored():
    good = node("node1", acme=STOPPED).model_dump()
    assert NodeReport.model_validate({**good, "future": 1}) == NodeReport.model_validate(good)
    with pytest.raises(ValidationError, match="memory"):
        NodeReport.model_validate({k: v for k, v in good.items() if k != "memory"})
    with pytest.raises(ValidationError, match="volume"):
        NodeReport.model_validate({**good, "sessions": [{**good["sessions"][0], "volume": "mounted"}]})
