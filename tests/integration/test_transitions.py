from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select, update

from deployer.store.admission import admitting
from deployer.store.loglines import COPY_THRESHOLD, append_lines
from deployer.store.models import Deployment, DeploymentLog
from deployer.store.states import Status
from deployer.store.transitions import transition
from tests.support.rows import make_deployment_row

_log = DeploymentLog.__table__  # type: ignore[attr-defined]
_dep = Deployment.__table__  # type: ignore[attr-defined]


def lines_of(engine: Engine, deployment_id: str) -> list[tuple[int, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(_log.c.line_no, _log.c.stream, _log.c.text).where(_log.c.deployment_id == deployment_id)
            .order_by(_log.c.line_no)
        ).all()  # fmt: skip
    return [tuple(r) for r in rows]  # type: ignore[misc]


def status_of(engine: Engine, deployment_id: str) -> str:
    with engine.connect() as conn:
        return str(conn.execute(select(_dep.c.status).where(_dep.c.id == deployment_id)).scalar_one())


def test_a_transition_from_the_expected_status_wins_and_logs_a_system_line(engine: Engine) -> None:
    dep = make_deployment_row(engine)
    seen: list[tuple[str, Status]] = []
    assert transition(engine, dep, expected=Status.QUEUED, to=Status.UNPACKING, on_transition=lambda *a: seen.append(a))
    assert status_of(engine, dep) == "unpacking"
    assert lines_of(engine, dep) == [(1, "system", "status: unpacking")]
    assert seen == [(dep, Status.UNPACKING)]


def test_a_transition_from_a_stale_status_loses_and_changes_nothing(engine: Engine) -> None:
    dep = make_deployment_row(engine, status="stopped")
    assert not transition(engine, dep, expected=Status.QUEUED, to=Status.UNPACKING)
    assert status_of(engine, dep) == "stopped"
    assert lines_of(engine, dep) == []


def test_an_illegal_transition_is_a_programming_error(engine: Engine) -> None:
    dep = make_deployment_row(engine)
    with pytest.raises(ValueError, match="illegal transition"):
        transition(engine, dep, expected=Status.QUEUED, to=Status.RUNNING)


def test_stopping_records_stopped_at(engine: Engine) -> None:
    dep = make_deployment_row(engine, status="running")
    assert transition(engine, dep, expected=Status.RUNNING, to=Status.STOPPED, message="by user")
    with engine.connect() as conn:
        assert conn.execute(select(_dep.c.stopped_at).where(_dep.c.id == dep)).scalar_one() is not None
    assert lines_of(engine, dep)[-1][2] == "status: stopped — by user"


def test_only_one_of_two_racing_transitions_wins(engine: Engine) -> None:
    dep = make_deployment_row(engine, status="running")
    results: list[bool] = []
    barrier = threading.Barrier(2)

    def go(to: Status) -> None:
        barrier.wait()
        results.append(transition(engine, dep, expected=Status.RUNNING, to=to))

    threads = [threading.Thread(target=go, args=(s,)) for s in (Status.STOPPED, Status.CRASHED)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, True]
    assert len(lines_of(engine, dep)) == 1


@pytest.mark.parametrize("count", [1, COPY_THRESHOLD])  # by INSERT, and by COPY on PostgreSQL
def test_nul_bytes_and_trailing_carriage_returns_are_cleaned(engine: Engine, count: int) -> None:
    dep = make_deployment_row(engine)
    with engine.begin() as conn:
        append_lines(conn, dep, [("stdout", "a\x00b\r"), ("stderr", "plain")] * count)
    assert lines_of(engine, dep)[:2] == [(1, "stdout", "a\ufffdb"), (2, "stderr", "plain")]
    assert len(lines_of(engine, dep)) == 2 * count


@pytest.mark.parametrize("count", [3, COPY_THRESHOLD])  # by INSERT, and by COPY on PostgreSQL
def test_lines_may_carry_dockers_own_iso_timestamps(engine: Engine, count: int) -> None:
    dep = make_deployment_row(engine)
    with engine.begin() as conn:
        stamped = [("stdout", f"l{i}", f"2026-11-23T12:{i // 60:02d}:{i % 60:02d}.123456789Z") for i in range(count)]
        append_lines(conn, dep, stamped)
    query = select(_log.c.ts).where(_log.c.deployment_id == dep).order_by(_log.c.line_no)
    with engine.connect() as conn:
        stamps = list(conn.execute(query).scalars())
    assert len(stamps) == count
    assert stamps[1].replace(tzinfo=UTC) - datetime(2026, 11, 23, 12, 0, 1, tzinfo=UTC) in (
        timedelta(microseconds=123456), timedelta(microseconds=123457)  # SQLite truncates, PostgreSQL rounds
    )  # fmt: skip


@pytest.mark.parametrize("count", [1, COPY_THRESHOLD])
def test_awkward_texts_come_back_exactly_by_insert_and_by_copy(engine: Engine, count: int) -> None:
    awkward = ["back\\slash", "tab\there", "\\N", "\\.", "mid\rreturn", "two\nlines", "ünïcødé ✓ 日本", "", " ",
               "\\t is not a tab", "a\\\tb\\\nc\\\\", "\t\t"]
    texts = [awkward[i % len(awkward)] + f" #{i}" for i in range(count)] + awkward
    dep = make_deployment_row(engine)
    with engine.begin() as conn:
        append_lines(conn, dep, [("stdout", t) for t in texts])
    assert [text for _, _, text in lines_of(engine, dep)] == texts


def run_together(*fns: Callable[[], None]) -> list[BaseException]:
    """Runs each function in its own thread, released at the same moment; returns what they raised."""
    start = threading.Barrier(len(fns))
    errors: list[BaseException] = []

    def guard(fn: Callable[[], None]) -> None:
        start.wait()
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guard, args=(f,)) for f in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_concurrent_tailer_batches_and_system_lines_never_duplicate_or_gap(pg_engine: Engine) -> None:
    engine = pg_engine
    dep = make_deployment_row(engine, status="running")
    batches, systems, flaps = 150, 150, 40

    def tailer() -> None:
        for i in range(batches):
            with engine.begin() as conn:
                append_lines(conn, dep, [("stdout", f"out {i}.{j}") for j in range(5)])

    def system_writer() -> None:
        for i in range(systems):
            with engine.begin() as conn:
                append_lines(conn, dep, [("system", f"sys {i}")])

    def health_flapper() -> None:
        for _ in range(flaps):
            transition(engine, dep, expected=Status.RUNNING, to=Status.UNHEALTHY)
            transition(engine, dep, expected=Status.UNHEALTHY, to=Status.RUNNING)

    assert run_together(tailer, system_writer, health_flapper) == []
    numbers = [n for n, _, _ in lines_of(engine, dep)]
    assert numbers == list(range(1, batches * 5 + systems + 2 * flaps + 1))
    outs = [t for _, s, t in lines_of(engine, dep) if s == "stdout"]
    assert outs == [f"out {i}.{j}" for i in range(batches) for j in range(5)]


@pytest.mark.parametrize("verb", ["upload", "restart"])
def test_concurrent_admissions_never_overshoot_max_active(engine: Engine, verb: str) -> None:
    """Twelve requests at once for three free slots, on both databases: exactly three get in."""
    from deployer.errors import AtCapacity
    from deployer.store.deployments import request_restart

    max_active, racers = 3, 12
    ids = [make_deployment_row(engine, status="stopped") for _ in range(racers)]
    start = threading.Barrier(racers)
    outcomes: list[str] = []

    def admit_one(dep: str) -> None:
        start.wait()
        try:
            if verb == "restart":
                request_restart(engine, dep, max_active=max_active)
            else:
                with admitting(engine, max_active) as conn:
                    conn.execute(update(_dep).where(_dep.c.id == dep).values(status="queued"))
            outcomes.append("in")
        except AtCapacity:
            outcomes.append("refused")

    threads = [threading.Thread(target=admit_one, args=(d,)) for d in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["in"] * max_active + ["refused"] * (racers - max_active)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).where(_dep.c.status == "queued")).scalar_one() == max_active
