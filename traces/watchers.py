"""Watchers: small hooks that turn what the deployer does into trace entries. Each installs only when
its name is in TRACE_WATCHERS, and each only calls `Recorder.record`/`update`, which never raise.

request (Flask), exception (Flask and Celery), auth (login outcomes, via `auth_event`), query
(SQLAlchemy cursor events, tagged `slow` past TRACE_SLOW_QUERY_MS, grouped by statement family),
job (Celery: pending → processing → processed/failed on one entry), schedule (runs that carry a
`schedule` header), client_request (a requests session's responses), event (deployment transitions
with how long the previous state lasted), log (a logging handler), command (click).
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from traces.recorder import Recorder, batch_id, fnv1a32, new_id

if TYPE_CHECKING:
    from flask import Flask

_NUMBERS = re.compile(r"\b\d+\b|'[^']*'")


def install_flask(app: Flask, rec: Recorder) -> None:
    from flask import g, got_request_exception, request

    if rec.on("request"):

        @app.before_request
        def _start() -> None:
            g.trace_t0 = time.perf_counter()
            g.trace_token = batch_id.set(new_id())

        @app.after_request
        def _done(response: Any) -> Any:
            t0 = getattr(g, "trace_t0", None)
            if t0 is not None:
                raw = (request.method, request.path, request.query_string, request.url_rule, response.status_code,
                       time.perf_counter() - t0, request.remote_addr, list(request.headers.items()))  # fmt: skip
                rec.record("request", functools.partial(_request_content, rec, *raw),
                           tags=[f"status:{response.status_code}"])  # fmt: skip
            return response

        @app.teardown_request
        def _end(_exc: BaseException | None) -> None:
            token = g.pop("trace_token", None)
            if token is not None:
                batch_id.reset(token)

    if rec.on("exception"):

        def _exception(_sender: Any, exception: BaseException, **_: Any) -> None:
            record_exception(rec, exception)

        got_request_exception.connect(_exception, app, weak=False)


def _request_content(rec: Recorder, method: str, path: str, query: bytes, rule: Any, status: int, seconds: float,
                     ip: str | None, headers: list[tuple[str, str]]) -> dict[str, Any]:  # fmt: skip
    uri = f"{path}?{query.decode('utf-8', 'replace')}" if query else path
    return {"method": method, "uri": uri, "route": str(rule), "status": status, "duration_ms": round(seconds * 1000, 2),
            "ip": ip, "headers": rec.redaction.headers_of(headers), "summary": f"{method} {path} {status}"}  # fmt: skip


def record_exception(rec: Recorder, exc: BaseException) -> None:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
    rec.record("exception", {
        "class": type(exc).__name__, "message": str(exc)[:2000], "where": where,
        "trace": traceback.format_exception(exc)[-20:], "summary": f"{type(exc).__name__}: {exc}"[:200],
    }, family=fnv1a32(f"{type(exc).__name__}@{where}"), tags=[type(exc).__name__])  # fmt: skip


def auth_event(rec: Recorder | None, *, ok: bool, via: str, name: str | None = None) -> None:
    if rec is not None and rec.on("auth"):
        rec.record("auth", {"ok": ok, "via": via, "token": name, "summary": f"{via} {'ok' if ok else 'refused'}"},
                   tags=["auth:ok" if ok else "auth:failed"])  # fmt: skip


@functools.lru_cache(maxsize=4096)
def query_family(statement: str) -> str:
    """Statements that differ only in literals are one family (their parameters are bound apart)."""
    return fnv1a32(_NUMBERS.sub("?", statement))


def install_sqlalchemy(engine: Any, rec: Recorder) -> None:
    """Times each statement where the dialect runs it. Dialect events, not the engine's cursor events:
    engine events give every connection its own joined dispatcher, which cost more per query here than
    recording it. Listeners run the dialect's own method and say so by returning True; a statement that
    raises is not recorded (the exception watcher sees it)."""
    if not rec.on("query"):
        return
    from sqlalchemy import event

    dialect = engine.dialect
    name, slow_ms = dialect.name, rec.slow_query_ms

    def _record(statement: str, started: float, many: bool) -> None:
        ms = (time.perf_counter() - started) * 1000
        rec.record("query", functools.partial(_query_content, statement, ms, many, name),
                   tags=("slow",) if ms > slow_ms else (), family=query_family(statement))  # fmt: skip

    def _execute(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
        started = time.perf_counter()
        dialect.do_execute(cursor, statement, parameters, context)
        _record(statement, started, False)
        return True

    def _executemany(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
        started = time.perf_counter()
        dialect.do_executemany(cursor, statement, parameters, context)
        _record(statement, started, True)
        return True

    def _execute_no_params(cursor: Any, statement: str, context: Any) -> bool:
        started = time.perf_counter()
        dialect.do_execute_no_params(cursor, statement, context)
        _record(statement, started, False)
        return True

    event.listen(dialect, "do_execute", _execute)
    event.listen(dialect, "do_executemany", _executemany)
    event.listen(dialect, "do_execute_no_params", _execute_no_params)


def _query_content(statement: str, ms: float, many: bool, dialect: str) -> dict[str, Any]:
    return {"sql": statement[:4000], "duration_ms": round(ms, 2), "many": many, "connection": dialect,
            "summary": statement[:120]}  # fmt: skip


def schedule_of(task: Any) -> str | None:
    """The schedule a run belongs to, from the `schedule` message header (beat and `schedule run` set it)."""
    request = getattr(task, "request", None)
    name = getattr(request, "schedule", None) or (getattr(request, "headers", None) or {}).get("schedule")
    return str(name) if name else None


class CeleryWatcher:
    """job: pending (published) → processing → processed/failed, one entry per task id; schedule: each
    run that carries a `schedule` header, with its outcome; exception: task failures."""

    def __init__(self, app: Any, rec: Recorder) -> None:
        self.app, self.rec = app, rec
        self.started: dict[str, float] = {}
        self.tokens: dict[str, Any] = {}

    def install(self) -> None:
        from celery.signals import before_task_publish, task_failure, task_postrun, task_prerun

        if self.rec.on("job"):
            before_task_publish.connect(self.pending, weak=False)
        task_prerun.connect(self.prerun, weak=False)
        task_postrun.connect(self.postrun, weak=False)
        if self.rec.on("exception"):
            task_failure.connect(self.failed, weak=False)

    def _ours(self, task: Any, task_id: str | None) -> bool:
        return task is not None and task_id is not None and task.app is self.app

    def pending(self, sender: str | None = None, headers: dict[str, Any] | None = None, **_: Any) -> None:
        task_id = (headers or {}).get("id")
        if task_id:
            self.rec.record("job", {"name": sender, "id": task_id, "status": "pending", "summary": f"{sender} pending"},
                            uuid=task_id, batch=task_id, tags=[f"job:{sender}"])  # fmt: skip

    def prerun(self, task_id: str | None = None, task: Any = None, **_: Any) -> None:
        if not self._ours(task, task_id):
            return
        assert task_id is not None
        self.started[task_id] = time.perf_counter()
        self.tokens[task_id] = batch_id.set(task_id)
        if self.rec.on("job"):
            content = {"name": task.name, "id": task_id, "status": "processing", "summary": f"{task.name} processing"}
            self.rec.record("job", content, uuid=task_id, batch=task_id, tags=[f"job:{task.name}"])

    def postrun(self, task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any) -> None:
        if not self._ours(task, task_id):
            return
        assert task_id is not None
        ms = round((time.perf_counter() - self.started.pop(task_id, time.perf_counter())) * 1000, 2)
        status = "processed" if state == "SUCCESS" else "failed"
        if self.rec.on("job"):
            content = {"name": task.name, "id": task_id, "status": status, "state": state, "duration_ms": ms,
                       "summary": f"{task.name} {status}"}  # fmt: skip
            self.rec.update(task_id, content, tags=[f"job:{status}"])
        name = schedule_of(task)
        if name and self.rec.on("schedule"):
            self.rec.record("schedule", {"schedule": name, "task": task.name, "outcome": status, "duration_ms": ms,
                                         "summary": f"{name} {status}"}, tags=[f"schedule:{name}"])  # fmt: skip
        token = self.tokens.pop(task_id, None)
        if token is not None:
            batch_id.reset(token)

    def failed(self, sender: Any = None, exception: BaseException | None = None, **_: Any) -> None:
        if exception is not None and sender is not None and sender.app is self.app:
            record_exception(self.rec, exception)


def install_celery(app: Any, rec: Recorder) -> None:
    CeleryWatcher(app, rec).install()


def install_requests(session: Any, rec: Recorder) -> None:
    if not rec.on("client_request"):
        return

    def _response(response: Any, *_: Any, **__: Any) -> Any:
        req = response.request
        rec.record("client_request", {
            "method": req.method, "url": req.url, "status": response.status_code,
            "duration_ms": round(response.elapsed.total_seconds() * 1000, 2),
            "headers": rec.redaction.headers_of(req.headers.items()),
            "summary": f"{req.method} {req.url} {response.status_code}",
        }, tags=[f"status:{response.status_code}"])  # fmt: skip
        return response

    session.hooks.setdefault("response", []).append(_response)


def event_watcher(rec: Recorder) -> Callable[[str, Any], None] | None:
    """An on_transition callback: each transition with how long the deployment spent in the state before."""
    if not rec.on("event"):
        return None
    last: dict[str, tuple[str, float]] = {}
    lock = threading.Lock()

    def on_transition(deployment_id: str, status: Any) -> None:
        now = time.time()
        with lock:
            previous = last.get(deployment_id)
            last[deployment_id] = (str(status), now)
        content: dict[str, Any] = {"deployment_id": deployment_id, "status": str(status),
                                   "summary": f"{deployment_id[:8]} → {status}"}  # fmt: skip
        if previous is not None:
            content.update(previous=previous[0], previous_duration_ms=round((now - previous[1]) * 1000, 1))
        rec.record("event", content, tags=[f"deployment:{deployment_id}", f"status:{status}"])

    return on_transition


class TraceLogHandler(logging.Handler):
    def __init__(self, rec: Recorder, level: int = logging.WARNING) -> None:
        super().__init__(level)
        self.rec = rec

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("traces"):
            return  # never trace the tracer
        self.rec.record("log", {"level": record.levelname, "logger": record.name, "message": record.getMessage()[:4000],
                                "summary": f"{record.levelname} {record.getMessage()[:100]}"},
                        tags=[f"level:{record.levelname.lower()}"])  # fmt: skip


def install_logging(rec: Recorder, level: int = logging.WARNING) -> None:
    if rec.on("log") and not any(isinstance(h, TraceLogHandler) for h in logging.getLogger().handlers):
        logging.getLogger().addHandler(TraceLogHandler(rec, level))


def record_command(rec: Recorder | None, name: str, args: list[str], exit_code: int, duration_ms: float) -> None:
    if rec is not None and rec.on("command"):
        rec.record("command", {"command": name, "args": [a if "token" not in a.lower() else "********" for a in args],
                               "exit_code": exit_code, "duration_ms": round(duration_ms, 1),
                               "summary": f"deployer {name} → {exit_code}"})  # fmt: skip
