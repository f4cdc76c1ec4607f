"""Our sender against a reference-shaped trace runtime: a small WSGI server written here from the
reference's rules alone (hmac/hashlib, not `traces.signing`), which takes only `{"entry"}` writes,
`{uuid, patch}` updates and `{familyHash, exceptUuid}` marks, and verifies each request against its
own route path, as the reference's ingest gateway does."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deployer.settings import load_settings
from tests.support.live import LiveServer
from traces.recorder.core import ProxySink, Recorder

KEY, SECRET = "ref-key", "ref-secret-ref-secret"
ROUTES = ("/zin/trace/write", "/zin/trace/write/update", "/zin/trace/write/mark-family-stale")


class ReferenceRuntime:
    """Mounted under `prefix`, like a reference runtime behind a proxy that strips it: the route seen
    is the request path without the prefix, and that is what the signature must cover."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.got: list[tuple[str, dict[str, Any]]] = []
        self.refused: list[str] = []
        self.nonces: set[str] = set()
        self.poison: str | None = None  # an entry with this `sql` fails in storage: 500
        self.lock = threading.Lock()

    def _check(self, route: str, environ: dict[str, Any], body: bytes) -> str | None:
        h = {k: environ.get("HTTP_" + k.upper().replace("-", "_")) for k in
             ("x-zt-key-id", "x-zt-timestamp", "x-zt-nonce", "x-zt-body-sha256", "x-zt-signature")}  # fmt: skip
        if any(v is None for v in h.values()):
            return "MISSING_HEADER"
        ts = int(h["x-zt-timestamp"])  # type: ignore[arg-type]
        if abs(time.time() * 1000 - ts) > 60_000:
            return "EXPIRED"
        if hashlib.sha256(body).hexdigest() != h["x-zt-body-sha256"]:
            return "INVALID_BODY_SHA"
        if h["x-zt-key-id"] != KEY:
            return "UNKNOWN_KEY"
        text = "\n".join(["POST", route, "", str(ts), h["x-zt-nonce"], h["x-zt-body-sha256"]])  # type: ignore[list-item]
        if not hmac.compare_digest(hmac.new(SECRET.encode(), text.encode(), hashlib.sha256).hexdigest(),
                                   h["x-zt-signature"] or ""):  # fmt: skip
            return "INVALID_SIGNATURE"
        with self.lock:
            if h["x-zt-nonce"] in self.nonces:
                return "REPLAYED"
            self.nonces.add(h["x-zt-nonce"])  # type: ignore[arg-type]
        return None

    @staticmethod
    def _valid(route: str, doc: Any) -> bool:
        if not isinstance(doc, dict):
            return False
        if route == ROUTES[0]:
            return isinstance(doc.get("entry"), dict)  # `entries` is not the reference's
        if route == ROUTES[1]:
            return isinstance(doc.get("uuid"), str) and isinstance(doc.get("patch"), dict)
        return isinstance(doc.get("familyHash"), str) and isinstance(doc.get("exceptUuid"), str)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path = environ["PATH_INFO"]
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        route = path.removeprefix(self.prefix) if self.prefix and path.startswith(self.prefix + "/") else None
        route = path if not self.prefix else route
        if environ["REQUEST_METHOD"] != "POST" or route not in ROUTES:
            return self._answer(start_response, "404 Not Found", {"ok": False})
        code = self._check(route, environ, body)
        if code is not None:
            self.refused.append(code)
            status = "401 Unauthorized" if code in ("EXPIRED", "REPLAYED") else "403 Forbidden"
            return self._answer(start_response, status, {"ok": False, "error": {"code": code, "message": code}})
        doc = json.loads(body)
        if not self._valid(route, doc):
            self.refused.append("VALIDATION_ERROR")
            error = {"code": "VALIDATION_ERROR", "message": "bad body"}
            return self._answer(start_response, "400 Bad Request", {"ok": False, "error": error})
        if self.poison and route == ROUTES[0] and doc["entry"]["content"].get("sql") == self.poison:
            return self._answer(start_response, "500 Internal Server Error", {"ok": False})
        with self.lock:
            self.got.append((route, doc))
        return self._answer(start_response, "200 OK", {"ok": True})

    @staticmethod
    def _answer(start_response: Any, status: str, doc: dict[str, Any]) -> list[bytes]:
        start_response(status, [("Content-Type", "application/json")])
        return [json.dumps(doc).encode()]


@pytest.fixture(params=["", "/behind/a/proxy"], ids=["no prefix", "a path prefix"])
def reference(request: pytest.FixtureRequest) -> Iterator[tuple[ReferenceRuntime, LiveServer]]:
    runtime = ReferenceRuntime(request.param)
    server = LiveServer(runtime)
    yield runtime, server
    server.close()


def sender(tmp_path: Path, url: str, mode: str = "single") -> Recorder:
    settings = load_settings({
        "DEPLOYER_DATA_ROOT": str(tmp_path), "TRACE_ENABLED": "true", "TRACE_PROXY": "true", "TRACE_PROXY_URL": url,
        "TRACE_PROXY_KEY_ID": KEY, "TRACE_PROXY_SECRET": SECRET, "TRACE_PROXY_MODE": mode,
    })  # fmt: skip
    return Recorder(ProxySink(settings), watchers=frozenset({"query", "job"}))


def test_in_single_mode_our_sender_speaks_only_the_reference_wire_correctly_signed(
    tmp_path: Path, reference: tuple[ReferenceRuntime, LiveServer]
) -> None:
    runtime, server = reference
    rec = sender(tmp_path, server.url + runtime.prefix)
    plain = rec.record("job", {"name": "t", "status": "processing", "token": "hunter2"}, tags=["job:t"])
    family = rec.record("query", {"sql": "select 1"}, family="fam-1")
    assert plain and family
    rec.update(plain, {"name": "t", "status": "processed"}, tags=["job:processed"])
    assert rec.flush() and rec.counters.failed == 0, (rec.counters.errors, runtime.refused)
    assert runtime.refused == []
    writes = [doc["entry"] for route, doc in runtime.got if route == ROUTES[0]]
    assert [w["uuid"] for w in writes] == [plain, family]
    assert set(writes[0]) == {"uuid", "batchId", "familyHash", "type", "content", "tags", "isLatest", "createdAt"}
    assert writes[0]["content"]["token"] == "********" and writes[1]["familyHash"] == "fam-1"
    assert (ROUTES[2], {"familyHash": "fam-1", "exceptUuid": family}) in runtime.got
    assert (ROUTES[1], {"uuid": plain, "patch": {"content": {"name": "t", "status": "processed"}}}) in runtime.got
    assert len(runtime.got) == 4  # two writes, one mark (only the family's entry), one update


def test_batches_are_refused_by_a_reference_runtime_and_counted_never_raised(
    tmp_path: Path, reference: tuple[ReferenceRuntime, LiveServer]
) -> None:
    runtime, server = reference
    rec = sender(tmp_path, server.url + runtime.prefix, mode="batch")
    rec.record("query", {"sql": "select 1"})
    rec.record("query", {"sql": "select 2"})
    assert rec.flush()
    assert runtime.refused == ["VALIDATION_ERROR"] and runtime.got == []  # signed right, shaped ours
    assert rec.counters.failed == 2 and "400" in rec.counters.errors[0]


def test_in_single_mode_one_refused_entry_costs_only_itself(
    tmp_path: Path, reference: tuple[ReferenceRuntime, LiveServer]
) -> None:
    runtime, server = reference
    runtime.poison = "select 2"
    rec = sender(tmp_path, server.url + runtime.prefix)
    for n in (1, 2, 3):
        rec.record("query", {"sql": f"select {n}"})
    assert rec.flush()
    assert [doc["entry"]["content"]["sql"] for _, doc in runtime.got] == ["select 1", "select 3"]
    assert rec.counters.failed == 1 and "1 of 3 entries" in rec.counters.errors[0]
