"""The trace runtime over real HTTP: signed ingest and its refusals, a nonce shared by every server
process on one database, the protected dashboard and API, prune; and its slim install."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from deployer.settings import Settings, load_settings
from tests.conftest import LiveServer
from tests.stack import TraceRuntimeProcess, settings_env
from traces.recorder import ProxySink, Recorder
from traces.runtime import create_trace_app
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


def post(url: str, path: str, body: bytes, nonce: str | None = None, **header_over: str) -> requests.Response:
    headers = sign(method="POST", path=path, search="", body=body, key_id=KEY, secret=SECRET,
                   now_ms=int(time.time() * 1000), nonce=nonce)  # fmt: skip
    headers.update(header_over)
    return requests.post(url + path, data=body, headers={k: v for k, v in headers.items() if v}, timeout=10)


def test_signed_entries_are_stored_and_each_refusal_has_its_status(server: LiveServer) -> None:
    body = json.dumps({"entries": [entry()]}).encode()
    ok = post(server.url, "/zin/trace/write", body)
    assert (ok.status_code, ok.json()) == (200, {"ok": True, "written": 1})
    nonce = post(server.url, "/zin/trace/write", body, nonce="fixed")
    replay = post(server.url, "/zin/trace/write", body, nonce="fixed")
    assert nonce.status_code == 200 and replay.status_code == 401 and replay.json()["error"]["code"] == "REPLAYED"
    cases = {
        "tampered body": (post(server.url, "/zin/trace/write", body, **{"x-zt-body-sha256": "0" * 64}), 403),
        "expired": (post(server.url, "/zin/trace/write", body, **{"x-zt-timestamp": "1000"}), 401),
        "unknown key": (post(server.url, "/zin/trace/write", body, **{"x-zt-key-id": "nope"}), 403),
        "missing header": (post(server.url, "/zin/trace/write", body, **{"x-zt-signature": ""}), 403),
        "invalid body": (post(server.url, "/zin/trace/write", b'{"entries": [{"uuid": 1}]}'), 400),
    }
    for name, (resp, status) in cases.items():
        assert resp.status_code == status, name
        assert resp.json()["ok"] is False and resp.json()["error"]["code"], name


def test_a_nonce_replayed_to_another_server_process_on_the_same_database_is_refused(
    trace_settings: Settings, tmp_path: Path
) -> None:
    env = settings_env(trace_settings)
    procs = [TraceRuntimeProcess([sys.executable, "-m", "traces"], env, tmp_path / "logs") for _ in range(2)]
    try:
        for p in procs:  # both were started together: they open the new database file at the same moment
            p.wait_up()
        body = json.dumps({"entries": [entry()]}).encode()
        headers = sign(method="POST", path="/zin/trace/write", search="", body=body, key_id=KEY, secret=SECRET,
                       now_ms=int(time.time() * 1000))  # fmt: skip
        first = requests.post(f"{procs[0].url}/zin/trace/write", data=body, headers=headers, timeout=10)
        again = requests.post(f"{procs[1].url}/zin/trace/write", data=body, headers=headers, timeout=10)
        assert first.status_code == 200
        assert again.status_code == 401 and again.json()["error"]["code"] == "REPLAYED"
    finally:
        for p in procs:
            p.stop()



def test_the_dashboard_and_api_need_the_token_and_show_entries_with_their_batch(
    server: LiveServer, trace_settings: Settings
) -> None:
    rec = Recorder(ProxySink(load_settings({**settings_env(trace_settings), "TRACE_PROXY_URL": server.url})),
                   watchers=frozenset({"request"}))  # fmt: skip
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
    from traces.server import prune
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
    subprocess.run([*pip, "-r", str(ROOT / "requirements" / "trace.txt")], check=True, timeout=600)
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
        body = json.dumps({"entries": [entry()]}).encode()
        assert post(proc.url, "/zin/trace/write", body).json() == {"ok": True, "written": 1}
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
