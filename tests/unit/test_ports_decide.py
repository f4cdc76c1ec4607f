from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from deployer.lifecycle.ports import candidates


def test_candidates_start_at_the_offset_and_wrap_around_skipping_taken_ports() -> None:
    assert candidates(10, 15, taken={12, 14}, start=13) == [13, 15, 10, 11]


@given(
    lo=st.integers(1, 60000),
    span=st.integers(1, 300),
    taken=st.sets(st.integers(1, 61000), max_size=100),
    start=st.integers(0, 70000),
)
def test_candidates_are_exactly_the_free_ports_of_the_range(lo: int, span: int, taken: set[int], start: int) -> None:
    hi = lo + span - 1
    got = candidates(lo, hi, taken, start)
    assert sorted(got) == sorted(set(range(lo, hi + 1)) - taken)
    assert len(got) == len(set(got))
