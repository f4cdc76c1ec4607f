"""A deployment's log budget (watcher/logbudget.py): a burst, then a rate, every dropped line counted once."""

from __future__ import annotations

from watcher.logbudget import LineBudget


def test_a_log_budget_keeps_a_burst_then_its_rate_and_counts_every_dropped_line_once() -> None:
    budget = LineBudget(rate=100, burst=500)
    assert budget.take(400, now=0.0) == 400
    assert budget.take(400, now=0.0) == 100  # the burst is spent
    assert budget.take(50, now=0.2) == 20  # 0.2 s at 100 lines/s
    assert budget.report() == "330 output lines dropped: over this deployment's log budget of 100 lines/s"
    assert budget.report() is None  # reported once
    assert budget.take(1000, now=100.0) == 500  # refills up to the burst, never beyond


def test_a_budget_of_zero_keeps_everything() -> None:
    budget = LineBudget(rate=0, burst=1)
    assert budget.take(10**6, now=0.0) == 10**6 and budget.report() is None
