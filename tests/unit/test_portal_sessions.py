"""The portal's server-side sessions: bounded pools, expiry, sign-out that sticks, and channels that
end with the session that opened them."""

import asyncio

import pytest

from toskit.gateway.portal.sessions import PENDING_LIFETIME, PENDING_LIMIT, SessionStore


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def signed_in(store) -> str:
    session = store.load(None)
    session.update(person={"subject": "ada"})
    return store.save(session)


def test_a_flood_of_pending_sessions_never_pushes_out_a_signed_in_one():
    store = SessionStore(idle=1800, lifetime=43200)
    sid = signed_in(store)
    for _ in range(PENDING_LIMIT + 100):
        pending = store.load(None)
        pending["_state"] = "x"
        store.save(pending)
    assert store.load(sid).get("person") == {"subject": "ada"}
    assert len(store) == PENDING_LIMIT + 1


def test_a_pending_session_lives_minutes_a_signed_in_one_its_idle_time():
    clock = Clock()
    store = SessionStore(idle=1800, lifetime=43200, clock=clock)
    pending = store.load(None)
    pending["_state"] = "x"
    pending_sid, person_sid = store.save(pending), signed_in(store)
    clock.now += PENDING_LIFETIME + 1
    assert store.load(pending_sid) == {} and store.load(person_sid).get("person")


def test_a_request_under_way_during_a_sign_out_does_not_bring_the_session_back():
    store = SessionStore(idle=1800, lifetime=43200)
    sid = signed_in(store)
    slow = store.load(sid)      # e.g. a callback waiting on the provider
    signing_out = store.load(sid)
    signing_out.end()
    assert store.save(signing_out) is None
    assert store.save(slow) is None  # it ends without a cookie...
    assert store.load(sid) == {}     # ...and the session stays gone


def test_sign_in_rotates_the_id_and_the_old_one_is_worth_nothing():
    store = SessionStore(idle=1800, lifetime=43200)
    pending = store.load(None)
    pending["_state"] = "x"
    old = store.save(pending)
    session = store.load(old)
    session.clear()
    session.rotate()
    session.update(person={"subject": "ada"})
    new = store.save(session)
    assert new != old and store.load(old) == {} and store.load(new).get("person")


def ended_when(store, sid: str, meanwhile) -> bool:
    """Runs `meanwhile(store)` (a coroutine) while a channel waits on `sid`; did the wait end within a second after?"""
    async def run():
        waiting = asyncio.create_task(store.until_ended(sid))
        await asyncio.sleep(0.05)
        await meanwhile(store)
        done, _ = await asyncio.wait({waiting}, timeout=1.0)
        waiting.cancel()
        return bool(done)
    return asyncio.run(run())


async def another_request(store, sid: str) -> None:
    store.save(store.load(sid))


async def signs_out(store, sid: str) -> None:
    session = store.load(sid)
    session.end()
    store.save(session)


async def another_person_signs_in(store, sid: str) -> None:  # the pool holds one: the first is pushed out
    signed_in(store)


async def nothing(store, sid: str) -> None:
    pass


@pytest.mark.parametrize("meanwhile, ends", [(nothing, False), (another_request, False), (signs_out, True),
                                             (another_person_signs_in, True)])
def test_a_channels_wait_ends_the_moment_its_session_does_and_not_before(meanwhile, ends):
    store = SessionStore(idle=1800, lifetime=43200, limit=1)
    sid = signed_in(store)
    assert ended_when(store, sid, lambda store: meanwhile(store, sid)) is ends


def test_input_on_a_channel_keeps_its_session_alive_and_silence_ends_it():
    store = SessionStore(idle=1, lifetime=43200)
    sid = signed_in(store)

    async def typing(store):
        for _ in range(15):  # 1.5 s, longer than the idle time
            store.touch(sid)
            await asyncio.sleep(0.1)
        assert store.load(sid).get("person")  # control: still signed in after the idle time

    async def run():
        waiting = asyncio.create_task(store.until_ended(sid))
        await typing(store)
        assert not waiting.done()
        await asyncio.wait_for(waiting, 3)  # then a second of silence ends it
    asyncio.run(run())
    assert store.load(sid) == {}


def test_waiting_on_a_session_that_is_gone_returns_at_once():
    store = SessionStore(idle=1800, lifetime=43200)
    asyncio.run(asyncio.wait_for(store.until_ended("no-such-session"), 1))
