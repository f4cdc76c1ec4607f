from __future__ import annotations

import pytest

from tasks.schedules import LeaderLease, LeaseClock, backoff_delay


def test_backoff_doubles_from_the_initial_delay_up_to_the_cap_with_bounded_jitter() -> None:
    delays = [backoff_delay(n, initial=5, factor=2, cap=60) for n in range(6)]
    assert delays == [0, 5, 10, 20, 40, 60]
    assert backoff_delay(2, initial=5, factor=2, cap=60, jitter=0.1, rng=lambda: 1.0) == pytest.approx(11.0)
    assert backoff_delay(2, initial=5, factor=2, cap=60, jitter=0.1, rng=lambda: 0.0) == 10


def test_a_lease_is_renewed_at_half_its_ttl_and_is_not_trusted_past_nine_tenths() -> None:
    clock = LeaseClock(ttl_ms=10_000, renewed_at=100.0)
    assert not clock.renew_due(104.9) and clock.renew_due(105.0)
    assert clock.valid(108.9) and not clock.valid(109.0)


class FakeKey:
    def __init__(self, ttl_ms: int = 10_000) -> None:
        self.ttl_ms = ttl_ms
        self.free, self.extend_ok, self.calls = True, True, []  # type: ignore[var-annotated]

    def acquire(self) -> bool:
        self.calls.append("acquire")
        got, self.free = self.free, False
        return got

    def extend(self) -> bool:
        self.calls.append("extend")
        return self.extend_ok

    def release(self) -> bool:
        self.calls.append("release")
        self.free = True
        return True


def test_the_leader_renews_on_time_and_stops_at_once_when_renewal_fails() -> None:
    now = [0.0]
    changes: list[bool] = []
    key = FakeKey()
    lease = LeaderLease(key, clock=lambda: now[0], on_change=changes.append)  # type: ignore[arg-type]
    assert lease.tick() and key.calls == ["acquire"]
    now[0] = 4.0
    assert lease.tick() and key.calls == ["acquire"]  # not due before ttl/2
    now[0] = 5.0
    assert lease.tick() and key.calls[-1] == "extend"
    key.extend_ok = False
    now[0] = 10.0
    assert not lease.tick()  # lost: no dispatch from this tick on
    assert changes == [True, False]


def test_a_follower_takes_the_lease_only_when_it_is_free() -> None:
    now = [0.0]
    key = FakeKey()
    key.free = False
    lease = LeaderLease(key, clock=lambda: now[0])  # type: ignore[arg-type]
    assert not lease.tick()
    key.free = True
    now[0] = 1.0
    assert lease.tick()
    lease.release()
    assert key.calls[-1] == "release" and not lease.leader
