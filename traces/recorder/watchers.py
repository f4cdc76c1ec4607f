"""Watchers: small hooks that turn what the deployer does into trace entries. Each installs only when
its name is in TRACE_WATCHERS, and each only calls `Recorder.record`/`update`, which never raise.

request (Flask), exception (Flask and Celery), auth (login outcomes, via `auth_event`), query
(SQLAlchemy cursor events, tagged `slow` past TRACE_SLOW_QUERY_MS, grouped by statement family),
job (Celery: pending → processing → processed/failed on one entry), schedule (runs that carry a
`schedule` header), client_request (a requests session's responses), event (deployment transitions
with how long the previous state lasted), log (a logging handler), command (click), model (rows
created, updated or deleted, by the ORM or by Core statements, with the fields they set), redis
(every redis-py command and pipeline of the process, with its duration).
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
import traceback
import weakref
from collections.abc import Callable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from traces.recorder.core import MASK, Recorder, batch_id, fnv1a32, new_id

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
    """query and model on one engine. Times each statement where the dialect runs it. Dialect events,
    not the engine's cursor events: engine events give every connection its own joined dispatcher, which
    cost more per query here than recording it. Listeners run the dialect's own method and say so by
    returning True (so there is one listener of each kind, whatever is watched); a statement that raises
    is not recorded (the exception watcher sees it)."""
    query, model = rec.on("query"), rec.on("model")
    if model:
        _watch_orm(engine, rec)
    if not (query or model):
        return
    from sqlalchemy import event

    dialect = engine.dialect
    name, slow_ms = dialect.name, rec.slow_query_ms

    def _record(statement: str, started: float, many: bool, cursor: Any, context: Any) -> None:
        ms = (time.perf_counter() - started) * 1000
        if query:
            rec.record("query", functools.partial(_query_content, statement, ms, many, name),
                       tags=("slow",) if ms > slow_ms else (), family=query_family(statement))  # fmt: skip
        if model and context is not None and context.is_crud:
            record_dml(rec, context, cursor)

    def _execute(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
        started = time.perf_counter()
        dialect.do_execute(cursor, statement, parameters, context)
        _record(statement, started, False, cursor, context)
        return True

    def _executemany(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
        started = time.perf_counter()
        dialect.do_executemany(cursor, statement, parameters, context)
        _record(statement, started, True, cursor, context)
        return True

    def _execute_no_params(cursor: Any, statement: str, context: Any) -> bool:
        started = time.perf_counter()
        dialect.do_execute_no_params(cursor, statement, context)
        _record(statement, started, False, cursor, context)
        return True

    event.listen(dialect, "do_execute", _execute)
    event.listen(dialect, "do_executemany", _executemany)
    event.listen(dialect, "do_execute_no_params", _execute_no_params)


# ---- model ----------------------------------------------------------------------------------------
# Rows written through the ORM are recorded from the session's flush, with the fields that changed;
# rows written by Core statements (the deployer's own way) from the statement's parameters. A flush's
# own statements carry the mapper's `compiled_cache` execution option and are left to the flush.

_ACTIONS = (("isinsert", "create"), ("isupdate", "update"), ("isdelete", "delete"))
_orm_engines: weakref.WeakKeyDictionary[Any, Recorder] = weakref.WeakKeyDictionary()
_orm_lock = threading.Lock()
_orm_listening = False


def plain(value: Any, depth: int = 0) -> Any:
    """A value as an entry shows it, copied now (the row may change later). A mapping — a JSON column,
    such as a deployment's environment — shows its keys only: its values are whatever the user put
    there, under names no redaction rule can know."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return value[:2000]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): MASK for k in list(value)[:100]}
    if isinstance(value, list | tuple):
        return [plain(v, depth + 1) for v in value[:50]] if depth < 2 else f"[{len(value)} items]"
    if isinstance(value, bytes | bytearray | memoryview):
        return f"[{len(value)} bytes]"
    return str(value)[:200]


@functools.lru_cache(maxsize=512)
def _model_name(table: str, generation: int) -> str:
    """The SQLModel class mapped to a table, else the table's name (`generation` renews the cache
    when classes are added)."""
    try:
        from sqlmodel.main import default_registry
    except ImportError:
        return table
    for mapper in list(default_registry.mappers):
        if getattr(mapper.local_table, "name", None) == table:
            return str(mapper.class_.__name__)
    return table


def model_name(table: str) -> str:
    try:
        from sqlmodel.main import default_registry

        generation = len(default_registry.mappers)
    except ImportError:
        generation = 0
    return _model_name(table, generation)


def _model_entry(rec: Recorder, action: str, model: str, table: str, ident: Any, content: dict[str, Any]) -> None:
    shown = "" if ident is None else f" {ident}"
    rec.record("model", {"action": action, "model": model, "table": table, "id": ident, **content,
                         "summary": f"{action} {model}{shown}"[:200]}, tags=[f"model:{model}"])  # fmt: skip


def record_dml(rec: Recorder, context: Any, cursor: Any) -> None:
    """A Core INSERT, UPDATE or DELETE just run: the fields it set (values of one row, names of many)."""
    try:
        if "compiled_cache" in context.execution_options:  # the ORM's flush: recorded by `_flushed`
            return
        action = next((a for attr, a in _ACTIONS if getattr(context, attr, False)), None)
        table = getattr(getattr(context.compiled, "statement", None), "table", None)
        columns = getattr(table, "c", None)
        if action is None or table is None or columns is None:
            return
        keys, pk = set(columns.keys()), [c.key for c in table.primary_key]
        params = context.compiled_parameters or [{}]
        content: dict[str, Any] = {"rows": max(cursor.rowcount, 0) if cursor.rowcount != -1 else len(params)}
        ident = params[0].get(pk[0]) if len(params) == 1 and len(pk) == 1 else None
        if action != "delete":
            if len(params) == 1:  # SET and VALUES bind by column key; WHERE binds get a suffix (id_1)
                content["changes"] = {k: plain(v) for k, v in params[0].items() if k in keys}
            else:
                content["fields"] = sorted(k for k in params[0] if k in keys)
        _model_entry(rec, action, model_name(table.name), table.name, plain(ident), content)
    except Exception:
        rec.counters.failed += 1  # never break the statement


def _watch_orm(engine: Any, rec: Recorder) -> None:
    global _orm_listening
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    with _orm_lock:
        _orm_engines[engine] = rec
        if not _orm_listening:
            event.listen(Session, "after_flush", _flushed)  # every Session class, SQLModel's included
            _orm_listening = True


def _flushed(session: Any, _flush_context: Any) -> None:
    """After the ORM flushed, before its bookkeeping: history still says what changed."""
    try:
        from sqlalchemy import inspect

        for action, objects in (("create", session.new), ("update", session.dirty), ("delete", session.deleted)):
            for obj in list(objects):
                _flushed_object(session, inspect(obj), action)
    except Exception:  # never break the flush
        for rec in list(_orm_engines.values()):
            rec.counters.failed += 1


def _flushed_object(session: Any, state: Any, action: str) -> None:
    mapper = state.mapper
    bind = session.get_bind(mapper=mapper)
    rec = _orm_engines.get(getattr(bind, "engine", bind))
    if rec is None:
        return
    values = state.dict  # what is loaded: reading it never loads more
    content: dict[str, Any] = {}
    if action == "create":
        content["changes"] = {p.key: plain(values[p.key]) for p in mapper.column_attrs if p.key in values}
    elif action == "update":
        changes = {}
        for p in mapper.column_attrs:
            history = state.attrs[p.key].history  # never loads an unloaded attribute
            if history.added or history.deleted:
                changes[p.key] = plain(history.added[0] if history.added else None)
        if not changes:
            return  # touched, not changed
        content["changes"] = changes
    pk = [values.get(mapper.get_property_by_column(c).key) for c in mapper.primary_key]
    ident = plain(pk[0] if len(pk) == 1 else pk)
    table = getattr(mapper.local_table, "name", mapper.class_.__name__)
    _model_entry(rec, action, mapper.class_.__name__, table, ident, {**content, "rows": 1})


# ---- redis ----------------------------------------------------------------------------------------
# redis-py has no per-command hooks of its own (its observability module feeds OpenTelemetry metrics),
# so the watcher wraps the three methods every command goes through, once per process, for every
# client the process makes — the deployer builds its clients in many places (events, schedules,
# leader, hub, readiness), and Celery's Redis transport is one of them. Pub/sub reads are not
# commands and are not recorded. Keys and values are never recorded, only command names.

_redis_recorders: tuple[Recorder, ...] = ()  # replaced, never mutated: the wrappers read it lock-free
_redis_lock = threading.Lock()
_redis_patched = False


@functools.lru_cache(maxsize=1024)
def _command_name(raw: Any) -> str:
    name = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    return name.upper()[:64]


def _redis_content(command: str, ms: float, error: str | None, where: str, commands: list[str] | None
                   ) -> dict[str, Any]:  # fmt: skip
    content: dict[str, Any] = {"command": command, "duration_ms": round(ms, 3), "connection": where}
    if commands is not None:
        content["commands"] = commands[:200]
        content["count"] = len(commands)
    if error:
        content["error"] = error
    content["summary"] = f"{command} {round(ms, 2)} ms" + (f" {error}" if error else "")
    return content


def _redis_record(client: Any, command: str, started: float, error: BaseException | None,
                  commands: list[str] | None = None) -> None:  # fmt: skip
    try:
        ms = (time.perf_counter() - started) * 1000
        kw = client.connection_pool.connection_kwargs
        where = f"{kw.get('host', kw.get('path', '?'))}:{kw.get('port', '')}/{kw.get('db', 0)}"
        failed = type(error).__name__ if error is not None else None
        tags = [f"redis:{command}"] + (["redis:failed"] if failed else [])
        for rec in _redis_recorders:
            rec.record("redis", functools.partial(_redis_content, command, ms, failed, where, commands), tags=tags)
    except Exception:  # never break the command
        for rec in _redis_recorders:
            rec.counters.failed += 1


def _patch_redis() -> None:
    import redis.client

    Redis, Pipeline = redis.client.Redis, redis.client.Pipeline
    command, immediate, execute = Redis.execute_command, Pipeline.immediate_execute_command, Pipeline.execute

    def timed(original: Callable[..., Any], name_of: Callable[..., tuple[str, list[str] | None]]) -> Any:
        @functools.wraps(original)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            if not _redis_recorders:
                return original(self, *args, **kwargs)
            try:
                name, commands = name_of(self, args)
            except Exception:
                return original(self, *args, **kwargs)
            started, error = time.perf_counter(), None
            try:
                return original(self, *args, **kwargs)
            except BaseException as exc:
                error = exc
                raise
            finally:
                _redis_record(self, name, started, error, commands)

        return wrapper

    def one(_client: Any, args: tuple[Any, ...]) -> tuple[str, None]:
        return _command_name(args[0]), None

    def stack(pipe: Any, _args: tuple[Any, ...]) -> tuple[str, list[str]]:
        name = "MULTI" if pipe.transaction or pipe.explicit_transaction else "PIPELINE"
        return name, [_command_name(c[0][0]) for c in pipe.command_stack]

    Redis.execute_command = timed(command, one)  # type: ignore[method-assign]
    Pipeline.immediate_execute_command = timed(immediate, one)  # type: ignore[method-assign]
    Pipeline.execute = timed(execute, stack)  # type: ignore[method-assign]


def install_redis(rec: Recorder) -> Callable[[], None] | None:
    """Record every redis-py command of this process into `rec`; returns what undoes it."""
    global _redis_recorders, _redis_patched
    if not rec.on("redis"):
        return None
    with _redis_lock:
        if not _redis_patched:
            _patch_redis()
            _redis_patched = True
        if rec not in _redis_recorders:
            _redis_recorders = (*_redis_recorders, rec)

    def uninstall() -> None:
        global _redis_recorders
        with _redis_lock:
            _redis_recorders = tuple(r for r in _redis_recorders if r is not rec)

    return uninstall


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
