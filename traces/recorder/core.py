"""The trace recorder (docs/architecture.md#traces): entries built, redacted and kept within a 64 KiB budget, then
handed to a background thread that writes them in batches to the local SQLite store or, with
`TRACE_PROXY=true`, signs and POSTs them to the trace runtime.

It never slows or breaks what it watches: `record` appends to a bounded deque and nothing else on
the caller's thread — no lock, no wake-up (waking the writer for every entry handed it the GIL four
times a request); the writer drains it every `flush_interval`, or as soon as a batch is full. A full
deque drops the entry and counts it; every failure inside is swallowed and counted, never raised
into the caller.
"""

from __future__ import annotations

import collections
import contextvars
import functools
import json
import logging
import os
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from deployer.settings import Settings

log = logging.getLogger(__name__)
BUDGET = 64 * 1024
MASK = "********"
DEFAULT_HEADERS = ("authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token", "*secret*")
DEFAULT_BODY_KEYS = ("password", "token", "secret", "apiKey", "api_key", "jwt", "bearer")
batch_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("trace_batch", default=None)


def new_id() -> str:
    """A version-4 UUID string. From `random`, not `uuid.uuid4()`: that reads os.urandom for every id,
    two syscalls an entry, which on a virtual machine cost more than the rest of recording. Trace ids
    need to be unique, not unguessable; `random` is reseeded in every forked child."""
    bits = (random.getrandbits(128) & ~(0xF000 << 64) & ~(0xC000 << 48)) | (0x4000 << 64) | (0x8000 << 48)
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@functools.lru_cache(maxsize=4096)  # families repeat (the same statements, the same raise sites)
def fnv1a32(text: str) -> str:
    """FNV-1a, 32 bits, as 8 hex digits: the family of an exception or a query."""
    h = 0x811C9DC5
    for byte in text.encode():
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return f"{h:08x}"


@dataclass(frozen=True)
class Redaction:
    headers: tuple[str, ...] = DEFAULT_HEADERS
    body_keys: tuple[str, ...] = DEFAULT_BODY_KEYS

    @functools.lru_cache(maxsize=1024)  # noqa: B019 - a handful of frozen instances, few distinct names
    def header_hidden(self, name: str) -> bool:
        low = name.lower()
        return any(low == p or (p.startswith("*") and p.endswith("*") and p.strip("*") in low) for p in self.headers)

    @functools.lru_cache(maxsize=4096)  # noqa: B019
    def key_hidden(self, name: str) -> bool:
        low = name.lower()
        return any(low == k.lower() for k in self.body_keys)

    def headers_of(self, headers: Iterable[tuple[str, str]]) -> dict[str, str]:
        return {k: MASK if self.header_hidden(k) else v for k, v in headers}

    def body(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: MASK if self.key_hidden(str(k)) else self.body(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.body(v) for v in value]
        return value


def redaction_from(settings: Settings) -> Redaction:
    def listed(raw: str, default: tuple[str, ...]) -> tuple[str, ...]:
        items = tuple(x.strip() for x in raw.split(",") if x.strip())
        return items or default

    return Redaction(listed(settings.trace_redact_headers, DEFAULT_HEADERS),
                     listed(settings.trace_redact_body_keys, DEFAULT_BODY_KEYS))  # fmt: skip


def _size(value: Any) -> int:
    return len(json.dumps(value, default=str).encode())


def _truncate_strings(value: Any, limit: int) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + f"…[truncated {len(value) - limit} chars]"
    if isinstance(value, dict):
        return {k: _truncate_strings(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [_truncate_strings(v, limit) for v in value[:200]]
    return value


def within_budget(content: dict[str, Any], budget: int = BUDGET) -> dict[str, Any]:
    """Content as is when it fits; else long strings cut shorter and shorter, then the largest fields
    replaced by a note of their size, and at last only a summary that says what was dropped."""
    if len(repr(content)) * 6 < budget:  # JSON is at most ~6 bytes per repr character: surely fits
        return content
    size = _size(content)
    if size <= budget:
        return content
    for limit in (8192, 2048, 512):
        compact = _truncate_strings(content, limit)
        if _size(compact) <= budget:
            return {**compact, "_compacted": {"originalBytes": size}}
    compact = dict(_truncate_strings(content, 512))
    for key in sorted(compact, key=lambda k: _size(compact[k]), reverse=True):
        compact[key] = f"[omitted: {_size(compact[key])} bytes]"
        if _size(compact) <= budget:
            return {**compact, "_compacted": {"originalBytes": size}}
    return {"summary": str(content.get("summary", ""))[:512], "_compacted": {"originalBytes": size, "dropped": True}}


Content = dict[str, Any] | Callable[[], dict[str, Any]]


class Sink(Protocol):
    def write(self, entries: list[dict[str, Any]]) -> None: ...
    def update(self, uuid: str, content: dict[str, Any], tags: list[str]) -> None: ...


@dataclass
class Counters:
    recorded: int = 0
    dropped: int = 0  # the queue was full
    failed: int = 0  # the sink refused or could not be reached
    errors: list[str] = field(default_factory=list)


_recorders: weakref.WeakSet[Recorder] = weakref.WeakSet()
_fork_hook = False


def _reset_after_fork() -> None:
    for rec in list(_recorders):
        rec._after_fork()


def _track(rec: Recorder) -> None:
    """Recorders of this process, reset in a forked child (Celery's prefork pool forks after set-up)."""
    global _fork_hook
    if not _fork_hook:
        os.register_at_fork(after_in_child=_reset_after_fork)
        _fork_hook = True
    _recorders.add(rec)


class Recorder:
    def __init__(self, sink: Sink, *, watchers: frozenset[str], redaction: Redaction = Redaction(),
                 slow_query_ms: int = 100, queue_size: int = 10_000, batch: int = 200,
                 flush_interval: float = 0.25) -> None:  # fmt: skip
        self.sink, self.watchers, self.redaction, self.slow_query_ms = sink, watchers, redaction, slow_query_ms
        self.batch, self.flush_interval, self.queue_size = batch, flush_interval, queue_size
        self.counters = Counters()
        self._items: collections.deque[tuple[str, Any]] = collections.deque()
        self._wake = threading.Event()
        self._delivering = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        _track(self)

    def on(self, watcher: str) -> bool:
        return watcher in self.watchers

    # ---- the caller's side: cheap, never raises ----
    def record(self, type: str, content: Content, *, tags: Iterable[str] = (), family: str | None = None,
               uuid: str | None = None, batch: str | None = None) -> str | None:  # fmt: skip
        """Hand an entry to the writer. `content` may be a function that builds it: the writer calls
        it, so a hot path only gathers the raw values."""
        try:
            uuid = uuid or new_id()
            entry = {
                "uuid": uuid, "batchId": batch or batch_id.get() or uuid,  # outside any batch: a batch of its own
                "familyHash": family, "type": type, "content": content, "tags": list(tags), "isLatest": True,
                "createdAt": int(time.time() * 1000),
            }  # fmt: skip
            self._offer(("write", entry))
            return uuid
        except Exception:  # the recorder must never break the code it watches
            self.counters.failed += 1
            return None

    def update(self, uuid: str, content: dict[str, Any], *, tags: Iterable[str] = ()) -> None:
        try:
            self._offer(("update", (uuid, content, list(tags))))
        except Exception:
            self.counters.failed += 1

    def _offer(self, item: tuple[str, Any]) -> None:
        self._ensure_thread()
        if len(self._items) >= self.queue_size:
            self.counters.dropped += 1
            return
        self._items.append(item)  # deque.append is atomic: the caller takes no lock
        self.counters.recorded += 1
        if len(self._items) == self.batch:
            self._wake.set()

    # ---- the background side ----
    def _ensure_thread(self) -> None:
        # No liveness check on every entry (it takes a lock): the thread never returns, and a forked
        # child, which has no thread, is reset by `_after_fork`.
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="trace-recorder", daemon=True)
                    self._thread.start()

    def _after_fork(self) -> None:
        self._thread, self._lock, self._delivering = None, threading.Lock(), False
        self._items.clear()  # the parent delivers its own

    def _prepare(self, entry: dict[str, Any]) -> dict[str, Any]:
        content = entry["content"]
        entry["content"] = within_budget(self.redaction.body(content() if callable(content) else content))
        return entry

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            while self._items:
                self._delivering = True  # before taking any, so `flush` never sees them in neither place
                items = [self._items.popleft() for _ in range(min(self.batch, len(self._items)))]
                try:
                    self._deliver(items)
                finally:
                    self._delivering = False

    def _failed(self, exc: Exception, count: int = 1) -> None:
        self.counters.failed += count
        if len(self.counters.errors) < 20:
            self.counters.errors.append(f"{type(exc).__name__}: {exc}"[:300])

    def _deliver(self, items: list[tuple[str, Any]]) -> None:
        writes = []
        for kind, entry in items:
            if kind == "write":
                try:  # one entry whose content cannot be built does not cost the rest of the batch
                    writes.append(self._prepare(entry))
                except Exception as exc:
                    self._failed(exc)
        if writes:
            try:
                self.sink.write(writes)
            except IngestRefused as exc:  # some were delivered
                self._failed(exc, exc.failed)
            except Exception as exc:
                self._failed(exc, len(writes))
        for kind, payload in items:
            if kind == "update":
                uuid, content, tags = payload
                try:
                    self.sink.update(uuid, within_budget(self.redaction.body(content)), tags)
                except Exception as exc:
                    self._failed(exc)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything recorded so far was delivered (tests, shutdown)."""
        end = time.monotonic() + timeout
        while self._items or self._delivering:
            if time.monotonic() > end:
                return False
            self._wake.set()
            time.sleep(0.01)
        return True


class LocalSink:
    def __init__(self, settings: Settings) -> None:
        from traces.store import TraceStore

        self.store = TraceStore(settings.trace_db_path)

    def write(self, entries: list[dict[str, Any]]) -> None:
        self.store.write(entries)

    def update(self, uuid: str, content: dict[str, Any], tags: list[str]) -> None:
        self.store.update(uuid, content, tags)


class IngestRefused(RuntimeError):
    """Some of a sink's writes were refused; `failed` says how many entries were lost."""

    def __init__(self, message: str, failed: int) -> None:
        super().__init__(message)
        self.failed = failed


class ProxySink:
    """Signed POSTs to the trace runtime, exactly as the reference's sender makes them: the request goes
    to TRACE_PROXY_URL (its path prefix kept) + the ingest path, and is signed over the ingest path alone,
    with no query string.

    TRACE_PROXY_MODE=single (default) speaks only the reference's wire, so any reference-shaped runtime
    takes it: one `{"entry"}` a request, then `{familyHash, exceptUuid}` to `<path>/mark-family-stale`
    for an entry of a family, and updates as `{uuid, patch: {content}}`. `batch` (our runtime only)
    sends `{"entries": […]}` in one request (the runtime marks older family members itself) and adds
    the update's tags."""

    def __init__(self, settings: Settings) -> None:
        import requests

        self.settings, self.session = settings, requests.Session()
        self.base = settings.trace_proxy_url.rstrip("/")
        raw = settings.trace_proxy_path.strip()
        self.path = "/" + raw.strip("/") if raw else "/zin/trace/write"
        prefix = "" if self.path == "/" else self.path
        self.update_path, self.stale_path = f"{prefix}/update", f"{prefix}/mark-family-stale"
        self.batch = settings.trace_proxy_mode == "batch"

    def _post(self, path: str, doc: dict[str, Any]) -> None:
        from traces.signing import sign

        body = json.dumps(doc, default=str).encode()
        s = self.settings
        headers = sign(method="POST", path=path, search="", body=body, key_id=s.trace_proxy_key_id,
                       secret=s.trace_proxy_secret, now_ms=int(time.time() * 1000))  # fmt: skip
        resp = self.session.post(self.base + path, data=body, timeout=s.trace_proxy_timeout_ms / 1000,
                                 headers={**headers, "Content-Type": "application/json"})  # fmt: skip
        if resp.status_code != 200:
            raise RuntimeError(f"trace ingest answered {resp.status_code}: {resp.text[:200]}")

    def write(self, entries: list[dict[str, Any]]) -> None:
        if self.batch:
            self._post(self.path, {"entries": entries})
            return
        failed, first = 0, ""
        for entry in entries:  # one refused entry does not cost the others
            try:
                self._post(self.path, {"entry": entry})
                if entry.get("familyHash") and entry.get("isLatest", True):
                    self._post(self.stale_path, {"familyHash": entry["familyHash"], "exceptUuid": entry["uuid"]})
            except Exception as exc:
                failed, first = failed + 1, first or f"{type(exc).__name__}: {exc}"
        if failed:
            raise IngestRefused(f"{failed} of {len(entries)} entries not delivered; first: {first}", failed)

    def update(self, uuid: str, content: dict[str, Any], tags: list[str]) -> None:
        doc: dict[str, Any] = {"uuid": uuid, "patch": {"content": content}}
        if self.batch and tags:
            doc["tags"] = tags
        self._post(self.update_path, doc)


def recorder_for(settings: Settings) -> Recorder | None:
    """The process's recorder, or None when TRACE_ENABLED is false."""
    if not settings.trace_enabled:
        return None
    sink: Sink = ProxySink(settings) if settings.trace_proxy else LocalSink(settings)
    watchers = frozenset(w.strip() for w in settings.trace_watchers.split(",") if w.strip())
    return Recorder(sink, watchers=watchers, redaction=redaction_from(settings),
                    slow_query_ms=settings.trace_slow_query_ms)  # fmt: skip
