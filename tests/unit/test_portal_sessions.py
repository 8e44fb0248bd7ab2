"""The portal's server-side sessions: bounded pools, expiry, and sign-out that sticks."""

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
