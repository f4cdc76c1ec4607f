"""The trace runtime (docs/architecture.md#trace-runtime): signed ingest, the trace dashboard and its JSON API, on its
own SQLite file. Slim on purpose: Flask and the standard library, no Celery, Redis, Docker or
SQLAlchemy, so it starts from the `trace` requirement set alone.

Ingest speaks the reference's wire: `POST <TRACE_PROXY_PATH>` `{"entry": {…}}` (or, our extension,
`{"entries": […]}`), `<path>/update` `{"uuid", "patch": {"content"?, "isLatest"?}}` (and, ours,
`"tags"`), `<path>/mark-family-stale` `{"familyHash", "exceptUuid"}`. It answers `200 {"ok": true}`
or `{"ok": false, "error": {code, message}}`: 401 EXPIRED or REPLAYED, 403 any other signature
failure, 400 VALIDATION_ERROR for a bad body after a good signature, 500 CONFIG_ERROR without a key
id and secret, 500 STORE_FAILED when storage fails.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from deployer.credentials import bearer, csrf_matches, csrf_secret
from deployer.localkeys import session_key
from deployer.settings import Settings
from traces.signing import Request, verify
from traces.store import InvalidEntry, TraceStore, now_ms

log = logging.getLogger(__name__)
PAGE = 50


def _fail(status: int, code: str, message: str) -> tuple[Response, int]:
    return jsonify({"ok": False, "error": {"code": code, "message": message}}), status


def _path(raw: str) -> str:
    """TRACE_PROXY_PATH as the reference normalises it: a leading slash, no trailing one."""
    path = "/" + raw.strip().strip("/")
    return path if raw.strip() else "/zin/trace/write"


def signed(settings: Settings, store: TraceStore, handler: Callable[[TraceStore, Any], dict[str, Any]]
           ) -> Callable[[], tuple[Response, int]]:  # fmt: skip
    """A view that verifies the signature (in the order the trace runtime documents) before `handler` sees the
    JSON body. Like the reference, it verifies against the route's own path with no query string: a sender whose
    base URL has a path prefix signs the path without it."""

    def view() -> tuple[Response, int]:
        body = request.get_data(cache=False)
        if not (settings.trace_proxy_key_id.strip() and settings.trace_proxy_secret.strip()):
            return _fail(500, "CONFIG_ERROR", "the trace runtime needs TRACE_PROXY_KEY_ID and TRACE_PROXY_SECRET")
        route = request.url_rule.rule if request.url_rule is not None else request.path
        req = Request(request.method, route, "", {k.lower(): v for k, v in request.headers.items()}, body)
        try:
            refused = verify(req, key_id=settings.trace_proxy_key_id, secret=settings.trace_proxy_secret,
                             window_ms=settings.trace_proxy_signing_window_ms, now_ms=now_ms(),
                             remember_nonce=store.remember_nonce)  # fmt: skip
        except Exception:
            log.exception("nonce store failed")
            return _fail(500, "STORE_FAILED", "could not record the nonce")
        if refused is not None:
            return _fail(refused.status, refused.code, refused.message)
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None  # as the reference, which reads an unparsable body as {}
        try:
            return jsonify({"ok": True, **handler(store, doc if isinstance(doc, dict) else {})}), 200
        except InvalidEntry as exc:
            return _fail(400, "VALIDATION_ERROR", str(exc)[:300] or "invalid body")
        except Exception:
            log.exception("trace ingest failed")
            return _fail(500, "STORE_FAILED", "could not store the entries")

    view.__name__ = handler.__name__
    return view


def _write(store: TraceStore, doc: dict[str, Any]) -> dict[str, Any]:
    if "entry" not in doc and isinstance(doc.get("entries"), list):  # our batching extension
        return {"written": store.write(doc["entries"])}
    entry = doc.get("entry")
    if not isinstance(entry, dict):
        raise InvalidEntry("entry must be an object")
    store.write([entry])
    return {}


def _update(store: TraceStore, doc: dict[str, Any]) -> dict[str, Any]:
    uuid, patch = doc.get("uuid"), doc.get("patch")
    if not isinstance(uuid, str) or not uuid.strip():
        raise InvalidEntry("uuid is required")
    if not isinstance(patch, dict):
        raise InvalidEntry("patch must be an object")
    content, latest = patch.get("content"), patch.get("isLatest")
    if content is not None and not isinstance(content, dict):
        raise InvalidEntry("patch.content must be an object")
    if latest is not None and not isinstance(latest, bool):
        raise InvalidEntry("patch.isLatest must be a boolean")
    tags = doc.get("tags", [])  # our extension: tags added to the entry
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise InvalidEntry("tags must be a list of strings")
    store.update(uuid, content, tags, is_latest=latest)
    return {}


def _mark_family_stale(store: TraceStore, doc: dict[str, Any]) -> dict[str, Any]:
    for name in ("familyHash", "exceptUuid"):
        if not isinstance(doc.get(name), str) or not doc[name].strip():
            raise InvalidEntry(f"{name} is required")
    store.mark_family_stale(doc["familyHash"], doc["exceptUuid"])
    return {}


def ingest_blueprint(settings: Settings, store: TraceStore) -> Blueprint:
    """Exactly `<path>`, `<path>/update` and `<path>/mark-family-stale`."""
    path = _path(settings.trace_proxy_path)
    base = "" if path == "/" else path
    bp = Blueprint("ingest", __name__)
    routes = ((path, _write), (f"{base}/update", _update), (f"{base}/mark-family-stale", _mark_family_stale))
    for rule, handler in routes:
        bp.add_url_rule(rule, handler.__name__.lstrip("_"), signed(settings, store, handler), methods=["POST"])
    return bp


def _int(name: str, default: int, low: int = 0, high: int = 10**15) -> int:
    raw = request.args.get(name, "")
    if not raw:
        return default
    if not raw.lstrip("-").isdigit() or not low <= int(raw) <= high:
        abort(400, f"{name} must be an integer between {low} and {high}")
    return int(raw)


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    store: TraceStore


def rt() -> Runtime:
    runtime: Runtime = current_app.extensions["trace"]
    return runtime


dash = Blueprint("trace", __name__, template_folder="templates")


def _authorised() -> bool:
    expected = rt().settings.trace_dashboard_token
    if not expected:
        return False
    token = bearer(request.headers.get("Authorization", ""))
    if token is not None and hmac.compare_digest(token, expected):
        return True
    held = session.get("trace")
    return isinstance(held, str) and hmac.compare_digest(held, _fingerprint(expected))


def _fingerprint(token: str) -> str:
    """What a session keeps of the dashboard token: changing the token ends every session made with
    the old one, and the cookie never carries the token itself."""
    return hashlib.sha256(b"trace-session\0" + token.encode()).hexdigest()[:32]


def _csrf() -> str:
    return csrf_secret(session, "trace_csrf", 24)


def _is_api() -> bool:
    return request.path.startswith(f"{rt().settings.trace_base_path}/api")


@dash.before_request
def _guard() -> Any:
    if request.endpoint == "trace.login":
        return None
    if not _authorised():
        if _is_api():
            return jsonify({"ok": False, "error": {"code": "UNAUTHORIZED", "message": "log in first"}}), 401
        return redirect(url_for("trace.login"))
    if request.method in ("POST", "DELETE") and not request.headers.get("Authorization"):
        sent = request.form.get("csrf_token", "") or request.headers.get("X-CSRF-Token", "")
        if not csrf_matches(sent, _csrf()):
            abort(403, "missing or wrong CSRF token")
    return None


@dash.app_template_filter("when")
def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


@dash.route("/login", methods=["GET", "POST"])
def login() -> Any:
    token = rt().settings.trace_dashboard_token
    error = None
    if not token:
        error = "The trace dashboard is closed: set TRACE_DASHBOARD_TOKEN on the trace runtime."
    elif request.method == "POST":
        if not csrf_matches(request.form.get("csrf_token", ""), _csrf()):
            abort(403, "missing or wrong CSRF token")
        if hmac.compare_digest(request.form.get("token", ""), token):
            session["trace"] = _fingerprint(token)
            return redirect(url_for("trace.overview"))
        error = "Wrong token."
    return render_template("trace/login.html", error=error, csrf=_csrf()), 401 if error else 200


@dash.post("/logout")
def logout() -> Any:
    session.clear()
    return redirect(url_for("trace.login"))


@dash.get("/")
def overview() -> str:
    recent, _ = rt().store.entries(limit=20)
    return render_template("trace/overview.html", stats=rt().store.stats(), recent=recent, csrf=_csrf())


@dash.get("/entries")
def entries_page() -> str:
    page = _int("page", 1, 1)
    filters = {k: request.args.get(k) or None for k in ("type", "tag", "batch")}
    rows, total = rt().store.entries(type=filters["type"], tag=filters["tag"], batch=filters["batch"], limit=PAGE,
                                     offset=(page - 1) * PAGE)  # fmt: skip
    return render_template("trace/entries.html", rows=rows, total=total, page=page, pages=max(1, -(-total // PAGE)),
                           filters={k: v for k, v in filters.items() if v}, csrf=_csrf())  # fmt: skip


@dash.get("/entries/<uuid>")
def entry_page(uuid: str) -> str:
    entry = rt().store.entry(uuid)
    if entry is None:
        abort(404, "no such entry")
    batch = [e for e in rt().store.batch(entry["batchId"]) if e["uuid"] != uuid]
    return render_template("trace/entry.html", e=entry, batch=batch, content=json.dumps(entry["content"], indent=2),
                           csrf=_csrf())  # fmt: skip


@dash.route("/monitoring", methods=["GET", "POST"])
def monitoring_page() -> Any:
    store = rt().store
    if request.method == "POST":
        tag = request.form.get("tag", "").strip()[:200]
        if tag:
            (store.unpin if request.form.get("action") == "unpin" else store.pin)(tag)
        return redirect(url_for("trace.monitoring_page"))
    pinned = {t: store.entries(tag=t, limit=5)[0] for t in store.monitoring()}
    return render_template("trace/monitoring.html", pinned=pinned, csrf=_csrf())


@dash.get("/api/entries")
def api_entries() -> Response:
    a = request.args
    rows, total = rt().store.entries(type=a.get("type") or None, tag=a.get("tag") or None, batch=a.get("batch") or None,
                                     since_ms=_int("since", 0) or None, until_ms=_int("until", 0) or None,
                                     limit=_int("limit", PAGE, 1, 500), offset=_int("offset", 0))  # fmt: skip
    return jsonify({"ok": True, "entries": rows, "total": total})


@dash.delete("/api/entries")
def api_clear() -> Response:
    removed = rt().store.prune(_int("before", 0)) if request.args.get("before") else rt().store.clear()
    return jsonify({"ok": True, "removed": removed})


@dash.get("/api/entries/<uuid>")
def api_entry(uuid: str) -> Any:
    entry = rt().store.entry(uuid)
    if entry is None:
        return jsonify({"ok": False, "error": {"code": "NOT_FOUND", "message": "no such entry"}}), 404
    return jsonify({"ok": True, "entry": entry})


@dash.get("/api/batch/<batch_id>")
def api_batch(batch_id: str) -> Response:
    return jsonify({"ok": True, "entries": rt().store.batch(batch_id)})


@dash.get("/api/stats")
def api_stats() -> Response:
    return jsonify({"ok": True, **rt().store.stats()})


@dash.route("/api/monitoring", methods=["GET", "POST", "DELETE"])
def api_monitoring() -> Response:
    store = rt().store
    tag = (request.get_json(silent=True) or {}).get("tag") or request.args.get("tag")
    if request.method == "POST" and tag:
        store.pin(str(tag)[:200])
    if request.method == "DELETE" and tag:
        store.unpin(str(tag))
    return jsonify({"ok": True, "tags": store.monitoring()})


def _error(exc: Exception) -> Any:
    from werkzeug.exceptions import HTTPException

    status = exc.code if isinstance(exc, HTTPException) and exc.code else 500
    message = exc.description if isinstance(exc, HTTPException) else "internal error"
    if status == 500:
        log.exception("trace runtime error on %s", request.path)
    if _is_api() or not request.path.startswith(rt().settings.trace_base_path):
        return jsonify({"ok": False, "error": {"code": str(status), "message": message}}), status
    return render_template("trace/error.html", status=status, message=message), status


def create_trace_app(settings: Settings, *, store: TraceStore | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY=session_key(settings), SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_NAME="trace_session", MAX_CONTENT_LENGTH=16 * 1024 * 1024)  # fmt: skip
    store = store or TraceStore(settings.trace_db_path)
    app.extensions["trace"] = Runtime(settings, store)
    app.register_blueprint(ingest_blueprint(settings, store))
    app.register_blueprint(dash, url_prefix=settings.trace_base_path)
    app.register_error_handler(Exception, _error)
    return app
