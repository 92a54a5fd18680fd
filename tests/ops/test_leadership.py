"""The ticker's lease (casemsg.ops.leadership): one holder at a time, taken over when it lapses, handed on
at once when released; and real `casemsg worker` processes of which only one ticks."""

from __future__ import annotations

import time

from casemsg.ops import leadership
from casemsg.ops.leadership import Leadership


def test_one_holder_at_a_time_and_takeover_when_the_lease_lapses(db, caplog):
    a = Leadership(holder="a:1", seconds=0.6)
    b = Leadership(holder="b:2", seconds=0.6)
    assert a.hold() is True
    assert b.hold() is False
    assert a.hold() is True  # renewed, same term
    lease = leadership.current()
    assert lease is not None and lease.holder == "a:1" and lease.term == 1
    assert lease.expires_on is not None and lease.renewed_on is not None and lease.expires_on > lease.renewed_on

    time.sleep(0.8)  # a stops beating (its machine is gone): the lease lapses
    with caplog.at_level("INFO", logger="casemsg.leadership"):
        assert b.hold() is True
        assert a.hold() is False  # a is back, too late: b leads
    lease = leadership.current()
    assert lease is not None and (lease.holder, lease.term) == ("b:2", 2)
    assert "ticker lease taken by b:2 (term 2)" in caplog.text
    assert "ticker lease lost by a:1 (term 1)" in caplog.text


def test_a_released_lease_is_taken_at_the_next_beat(db):
    a = Leadership(holder="a:1")
    b = Leadership(holder="b:2")
    assert a.hold() and not b.hold()
    a.release()
    assert b.hold() is True and a.hold() is False
    lease = leadership.current()
    assert lease is not None and (lease.holder, lease.term) == ("b:2", 2)


def test_a_live_lease_is_not_taken_whatever_the_other_clock_says(db):
    # the lease is compared with the database's clock: a taker cannot see it expired early
    a = Leadership(holder="a:1", seconds=30)
    assert a.hold()
    for _ in range(3):
        assert Leadership(holder="b:2", seconds=0.01).hold() is False
    lease = leadership.current()
    assert lease is not None and lease.holder == "a:1" and lease.term == 1


def test_the_keeper_thread_holds_the_lease_through_a_long_beat_and_releases_it(transactional_db):
    import threading

    stop = threading.Event()
    a = Leadership(holder="a:1", seconds=0.5)
    keeper = threading.Thread(target=a.keep, args=(stop, 0.1), daemon=True)
    keeper.start()
    try:
        deadline = time.monotonic() + 5
        while not a.leading and time.monotonic() < deadline:
            time.sleep(0.05)
        assert a.leading
        time.sleep(1.0)  # twice the lease: the ticker's beat may take that long, the keeper renews meanwhile
        assert Leadership(holder="b:2", seconds=0.5).hold() is False
        assert a.leading
    finally:
        stop.set()
        keeper.join(5)
    assert not a.leading
    lease = leadership.current()
    assert lease is not None and lease.holder == ""  # released: the next worker takes it at once
    assert Leadership(holder="b:2").hold() is True
