"""The trace runtime over real HTTP: signed ingest and its refusals, a nonce shared by every server
process on one database, the protected dashboard and API, prune; and its slim install."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from deployer.settings import Settings, load_settings
from tests.support.live import LiveServer
from tests.support.stack import TraceRuntimeProcess, settings_env
from traces.recorder.core import ProxySink, Recorder
from traces.runtime.app import create_trace_app
from traces.signing import sign

ROOT = Path(__file__).parents[2]
KEY, SECRET, DASH = "k1", "s" * 32, "dash-token"


@pytest.fixture
def trace_settings(tmp_path: Path) -> Settings:
    return load_settings({
        "DEPLOYER_DATA_ROOT": str(tmp_path), "DB_DATABASE_SQLITE": str(tmp_path / "trace.sqlite"),
        "TRACE_PROXY_KEY_ID": KEY, "TRACE_PROXY_SECRET": SECRET, "TRACE_DASHBOARD_TOKEN": DASH,
    })  # fmt: skip


@pytest.fixture
def server(trace_settings: Settings) -> Iterator[LiveServer]:
    s = LiveServer(create_trace_app(trace_settings))
    yield s
    s.close()


def entry(**over: Any) -> dict[str, Any]:
    return {"uuid": str(uuid.uuid4()), "batchId": "b1", "type": "request", "content": {"summary": "GET /"},
            "tags": ["status:200"], "isLatest": True, "createdAt": int(time.time() * 1000), **over}  # fmt: skip


def js(doc: Any) -> bytes:
    """A body as the reference's sender makes it: JSON.stringify, no spaces."""
    return json.dumps(doc, separators=(",", ":")).encode()


def post(url: str, path: str, body: bytes, nonce: str | None = None, *, signed_path: str | None = None,
         now: int | None = None, **header_over: str) -> requests.Response:  # fmt: skip
    headers = sign(method="POST", path=signed_path or path, search="", body=body, key_id=KEY, secret=SECRET,
                   now_ms=now or int(time.time() * 1000), nonce=nonce)  # fmt: skip
    headers.update(header_over)
    headers = {k: v for k, v in headers.items() if v != "<absent>"}
    return requests.post(url + path, data=body, headers={**headers, "Content-Type": "application/json"}, timeout=10)


def api(server: LiveServer, path: str) -> Any:
    resp = requests.get(f"{server.url}/trace/api/{path}", headers={"Authorization": f"Bearer {DASH}"}, timeout=10)
    return resp.json()


def test_the_reference_senders_three_requests_are_answered_ok_and_applied(server: LiveServer) -> None:
    older = entry(type="exception", familyHash="fam1", content={"class": "KeyError", "summary": "KeyError: x"})
    newer = entry(type="query", familyHash="fam1", content={"sql": "select 1"})
    for e in (older, newer):
        resp = post(server.url, "/zin/trace/write", js({"entry": e}))
        assert (resp.status_code, resp.json()) == (200, {"ok": True})
    assert api(server, f"entries/{older['uuid']}")["entry"]["isLatest"] is True  # another type: still latest
    mark = {"familyHash": "fam1", "exceptUuid": newer["uuid"]}
    stale = post(server.url, "/zin/trace/write/mark-family-stale", js(mark))
    assert (stale.status_code, stale.json()) == (200, {"ok": True})
    assert api(server, f"entries/{older['uuid']}")["entry"]["isLatest"] is False
    assert api(server, f"entries/{newer['uuid']}")["entry"]["isLatest"] is True
    patch = {"uuid": newer["uuid"], "patch": {"content": {"sql": "select 2", "duration": 3}, "isLatest": False}}
    updated = post(server.url, "/zin/trace/write/update", js(patch))
    assert (updated.status_code, updated.json()) == (200, {"ok": True})
    shown = api(server, f"entries/{newer['uuid']}")["entry"]
    assert shown["content"] == {"sql": "select 2", "duration": 3} and shown["isLatest"] is False
    assert shown["tags"] == ["status:200"] and shown["familyHash"] == "fam1" and shown["batchId"] == "b1"
    only_latest = post(server.url, "/zin/trace/write/update", js({"uuid": older["uuid"], "patch": {"isLatest": True}}))
    assert only_latest.json() == {"ok": True}
    assert api(server, f"entries/{older['uuid']}")["entry"]["content"]["class"] == "KeyError"  # content kept
    assert api(server, f"entries/{older['uuid']}")["entry"]["isLatest"] is True


def test_our_batching_extension_shares_the_write_route(server: LiveServer) -> None:
    resp = post(server.url, "/zin/trace/write", js({"entries": [entry(), entry()]}))
    assert (resp.status_code, resp.json()) == (200, {"ok": True, "written": 2})
    assert api(server, "stats")["total"] == 2


GOOD = js({"entry": entry()})
REFUSALS = {
    "a missing header": (dict(body=GOOD, **{"x-zt-nonce": "<absent>"}), 403, "MISSING_HEADER"),
    "a timestamp that is no number": (dict(body=GOOD, **{"x-zt-timestamp": "soon"}), 403, "INVALID_TIMESTAMP"),
    "an expired timestamp": (dict(body=GOOD, now=int(time.time() * 1000) - 120_000), 401, "EXPIRED"),
    "a body that is not the hashed one": (dict(body=GOOD, **{"x-zt-body-sha256": "0" * 64}), 403, "INVALID_BODY_SHA"),
    "an unknown key id": (dict(body=GOOD, **{"x-zt-key-id": "nope"}), 403, "UNKNOWN_KEY"),
    "a wrong signature": (dict(body=GOOD, **{"x-zt-signature": "0" * 64}), 403, "INVALID_SIGNATURE"),
    "a signature over another path": (dict(body=GOOD, signed_path="/zin/trace/write/update"), 403, "INVALID_SIGNATURE"),
    "an entry that is no object": (dict(body=js({"entry": "x"})), 400, "VALIDATION_ERROR"),
    "a body with neither entry nor entries": (dict(body=js({"entrys": [entry()]})), 400, "VALIDATION_ERROR"),
    "a body that is no JSON": (dict(body=b"not json"), 400, "VALIDATION_ERROR"),
    "an entry without its batch id": (dict(body=js({"entry": entry(batchId=None)})), 400, "VALIDATION_ERROR"),
    "an update without a patch": (dict(body=js({"uuid": "u"}), path="/update"), 400, "VALIDATION_ERROR"),
    "an update without a uuid": (dict(body=js({"patch": {}}), path="/update"), 400, "VALIDATION_ERROR"),
    "a mark without exceptUuid": (dict(body=js({"familyHash": "f"}), path="/mark-family-stale"), 400,
                                  "VALIDATION_ERROR"),
}  # fmt: skip


@pytest.mark.parametrize("case", REFUSALS.values(), ids=list(REFUSALS))
def test_each_refusal_answers_the_reference_code_and_status_and_stores_nothing(
    server: LiveServer, case: tuple[dict[str, Any], int, str]
) -> None:
    kwargs, status, code = case
    kwargs = dict(kwargs)
    body, path = kwargs.pop("body"), "/zin/trace/write" + kwargs.pop("path", "")
    resp = post(server.url, path, body, **kwargs)
    assert resp.status_code == status
    assert resp.json()["ok"] is False and resp.json()["error"]["code"] == code
    assert set(resp.json()) == {"ok", "error"} and resp.json()["error"]["message"]
    assert api(server, "stats")["total"] == 0


def test_a_replayed_nonce_is_refused_with_401_replayed(server: LiveServer) -> None:
    first = post(server.url, "/zin/trace/write", GOOD, nonce="once")
    again = post(server.url, "/zin/trace/write", GOOD, nonce="once")
    assert first.json() == {"ok": True}
    assert again.status_code == 401 and again.json()["error"]["code"] == "REPLAYED"


def test_a_runtime_without_key_id_and_secret_answers_500_config_error(tmp_path: Path) -> None:
    settings = load_settings({"DEPLOYER_DATA_ROOT": str(tmp_path), "DB_DATABASE_SQLITE": str(tmp_path / "t.sqlite")})
    s = LiveServer(create_trace_app(settings))
    try:
        resp = post(s.url, "/zin/trace/write", GOOD)
        assert resp.status_code == 500 and resp.json()["error"]["code"] == "CONFIG_ERROR"
    finally:
        s.close()


def test_the_ingest_routes_are_exactly_the_proxy_path_and_its_two_suffixes(tmp_path: Path) -> None:
    settings = load_settings({
        "DEPLOYER_DATA_ROOT": str(tmp_path), "DB_DATABASE_SQLITE": str(tmp_path / "t.sqlite"),
        "TRACE_PROXY_KEY_ID": KEY, "TRACE_PROXY_SECRET": SECRET, "TRACE_PROXY_PATH": "/ingest/in/",
    })  # fmt: skip
    s = LiveServer(create_trace_app(settings))
    try:
        e = entry()
        assert post(s.url, "/ingest/in", js({"entry": e})).json() == {"ok": True}
        assert post(s.url, "/ingest/in/update", js({"uuid": e["uuid"], "patch": {}})).json() == {"ok": True}
        marked = post(s.url, "/ingest/in/mark-family-stale", js({"familyHash": "f", "exceptUuid": e["uuid"]}))
        assert marked.json() == {"ok": True}
        for old in ("/ingest/write", "/ingest/update", "/ingest/mark-family-stale", "/ingest/in/write"):
            assert post(s.url, old, js({"entry": entry()})).status_code == 404, old
    finally:
        s.close()


def test_a_nonce_replayed_to_another_server_process_on_the_same_database_is_refused(
    trace_settings: Settings, tmp_path: Path
) -> None:
    env = settings_env(trace_settings)
    procs = [TraceRuntimeProcess([sys.executable, "-m", "traces"], env, tmp_path / "logs") for _ in range(2)]
    try:
        for p in procs:  # both were started together: they open the new database file at the same moment
            p.wait_up()
        body = js({"entry": entry()})
        headers = sign(method="POST", path="/zin/trace/write", search="", body=body, key_id=KEY, secret=SECRET,
                       now_ms=int(time.time() * 1000))  # fmt: skip
        first = requests.post(f"{procs[0].url}/zin/trace/write", data=body, headers=headers, timeout=10)
        again = requests.post(f"{procs[1].url}/zin/trace/write", data=body, headers=headers, timeout=10)
        assert first.json() == {"ok": True}
        assert again.status_code == 401 and again.json()["error"]["code"] == "REPLAYED"
    finally:
        for p in procs:
            p.stop()


def test_the_dashboard_and_api_need_the_token_and_show_entries_with_their_batch(
    server: LiveServer, trace_settings: Settings
) -> None:
    env = {**settings_env(trace_settings), "TRACE_PROXY_URL": server.url, "TRACE_PROXY_MODE": "batch"}
    rec = Recorder(ProxySink(load_settings(env)), watchers=frozenset({"request"}))
    first = rec.record("request", {"summary": "GET /api/deployments", "headers": {"x": "y"}, "password": "hunter2"},
                       batch="batch-1")  # fmt: skip
    rec.record("query", {"summary": "select 1", "sql": "select 1"}, batch="batch-1", tags=["slow"])
    assert rec.flush() and rec.counters.failed == 0, rec.counters.errors
    assert requests.get(f"{server.url}/trace/api/entries", timeout=10).status_code == 401
    assert requests.get(f"{server.url}/trace/entries", timeout=10).url.endswith("/trace/login")
    auth = {"Authorization": f"Bearer {DASH}"}
    body = requests.get(f"{server.url}/trace/api/entries?type=request", headers=auth, timeout=10).json()
    assert body["total"] == 1 and body["entries"][0]["content"]["password"] == "********"
    batch = requests.get(f"{server.url}/trace/api/batch/batch-1", headers=auth, timeout=10).json()["entries"]
    assert {e["type"] for e in batch} == {"request", "query"}
    s = requests.Session()
    page = s.get(f"{server.url}/trace/login", timeout=10).text
    csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
    s.post(f"{server.url}/trace/login", data={"token": DASH, "csrf_token": csrf}, timeout=10)
    detail = s.get(f"{server.url}/trace/entries/{first}", timeout=10)
    assert detail.status_code == 200 and "select 1" in detail.text  # the rest of the batch is listed
    assert s.post(f"{server.url}/trace/monitoring", data={"tag": "slow"}, timeout=10).status_code == 403  # no CSRF
    s.post(f"{server.url}/trace/monitoring", data={"tag": "slow", "csrf_token": csrf}, timeout=10)
    assert requests.get(f"{server.url}/trace/api/monitoring", headers=auth, timeout=10).json()["tags"] == ["slow"]


def test_trace_prune_keeps_what_is_newer_than_the_cutoff_and_exceptions_when_asked(
    trace_settings: Settings,
) -> None:
    from traces.runtime.server import prune
    from traces.store import TraceStore

    store = TraceStore(trace_settings.trace_db_path)
    hour = 3_600_000
    now = int(time.time() * 1000)
    store.write([entry(createdAt=now - 5 * hour), entry(createdAt=now - 1 * hour),
                 entry(type="exception", createdAt=now - 5 * hour)])  # fmt: skip
    assert prune(trace_settings, hours=3, keep_exceptions=True) == 1
    assert prune(trace_settings, hours=3) == 1
    assert store.entries()[1] == 1


def test_the_trace_runtime_starts_from_its_own_requirement_set_alone(tmp_path: Path, trace_settings: Settings) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["trace"]
    subprocess.run([*pip, *extra], check=True, timeout=600)
    subprocess.run([*pip, "--no-deps", str(ROOT)], check=True, timeout=600)
    python = str(venv / "bin" / "python")
    heavy = "('celery', 'redis', 'docker', 'sqlalchemy')"
    probe = f"import importlib.util as u; print([m for m in {heavy} if u.find_spec(m)])"
    absent = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True)
    assert absent.stdout.strip() == "[]"
    env = {**settings_env(trace_settings), "PATH": os.environ["PATH"]}
    # Outside the checkout, so `-m traces` is the installed package, templates and all.
    proc = TraceRuntimeProcess([python, "-m", "traces"], env, tmp_path / "logs", name="slim", cwd=tmp_path)
    try:
        proc.wait_up()
        assert post(proc.url, "/zin/trace/write", js({"entry": entry()})).json() == {"ok": True}
    finally:
        proc.stop()


def test_only_the_newest_entry_of_a_family_stays_latest_within_a_batch_and_across_batches(tmp_path: Path) -> None:
    from traces.store import TraceStore

    store = TraceStore(tmp_path / "t.sqlite")
    store.write([entry(uuid="a1", type="query", familyHash="f1"), entry(uuid="b1", type="query", familyHash="f2"),
                 entry(uuid="a2", type="query", familyHash="f1"), entry(uuid="x1", type="exception", familyHash="f1"),
                 entry(uuid="n1"), entry(uuid="n2", isLatest=False)])  # fmt: skip
    store.write([entry(uuid="a3", type="query", familyHash="f1")])
    latest = {e["uuid"]: e["isLatest"] for e in store.entries(limit=100)[0]}
    assert latest == {"a1": False, "a2": False, "a3": True, "b1": True, "x1": True, "n1": True, "n2": False}
    assert store.mark_family_stale("f1", "a3") == 1  # only the exception's entry was still latest
    assert not store.entry("x1")["isLatest"] and store.entry("a3")["isLatest"]  # type: ignore[index]
