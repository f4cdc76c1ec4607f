from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, func, select

from deployer.errors import PortExhausted
from deployer.lifecycle.ports import allocate, release
from deployer.store.db import make_engine
from deployer.store.tables import PORTS as _ports
from tests.support.rows import make_deployment_row

LO, HI = 13000, 13199  # exactly 200 ports


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(_ports)).scalar_one())


def test_allocation_is_idempotent_per_deployment_and_release_too(engine: Engine) -> None:
    dep = make_deployment_row(engine)
    port = allocate(engine, dep, LO, HI)
    assert LO <= port <= HI
    assert allocate(engine, dep, LO, HI) == port
    assert release(engine, dep) is True
    assert release(engine, dep) is False
    assert count(engine) == 0


def test_a_full_range_raises_port_exhausted_naming_the_range(engine: Engine) -> None:
    a, b, c = (make_deployment_row(engine) for _ in range(3))
    assert {allocate(engine, a, 20000, 20001), allocate(engine, b, 20000, 20001)} == {20000, 20001}
    with pytest.raises(PortExhausted) as err:
        allocate(engine, c, 20000, 20001)
    assert err.value.message == "PORT_EXHAUSTED: no free port in 20000..20001"
    release(engine, a)
    assert allocate(engine, c, 20000, 20001) in {20000, 20001}


def test_200_concurrent_allocations_from_threads_never_share_a_port(pg_engine: Engine) -> None:
    deps = [make_deployment_row(pg_engine) for _ in range(200)]
    gate = threading.Barrier(32)

    def one(dep: str) -> int:
        if deps.index(dep) < 32:
            gate.wait()
        return allocate(pg_engine, dep, LO, HI)

    with ThreadPoolExecutor(max_workers=32) as pool:
        ports = list(pool.map(one, deps))
    assert sorted(ports) == list(range(LO, HI + 1))
    extra = make_deployment_row(pg_engine)
    with pytest.raises(PortExhausted):
        allocate(pg_engine, extra, LO, HI)


def _allocate_in_process(url: str, deps: list[str], start: multiprocessing.synchronize.Event, out: object) -> None:
    engine = make_engine(url, pool_size=2)
    start.wait()
    ports = [allocate(engine, d, LO, HI) for d in deps]
    out.put(ports)  # type: ignore[attr-defined]
    engine.dispose()


def test_200_concurrent_allocations_from_separate_processes_never_share_a_port(pg_engine: Engine, pg_url: str) -> None:
    deps = [make_deployment_row(pg_engine) for _ in range(200)]
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_allocate_in_process, args=(pg_url, deps[i::4], start, out)) for i in range(4)]
    for p in procs:
        p.start()
    start.set()
    ports = [port for _ in procs for port in out.get(timeout=120)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert sorted(ports) == list(range(LO, HI + 1))
    assert count(pg_engine) == 200
