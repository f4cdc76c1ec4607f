"""The dashboard: server-rendered pages over the same domain functions as the API (docs/architecture.md#http-api).
A deployment's page is `/d/<id>`, as in the reference (`/deployments/<id>` redirects there).

Pages need a session (log in with an API token); every form carries the session's CSRF token. Live
parts (status, logs, samples) are fetched by `static/app.js` from the JSON API and its log stream,
with the session cookie; JavaScript only ever writes text into the page, never HTML.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any

from flask import Blueprint, Flask, Response, g, redirect, render_template, request, url_for

from deployer.bundles.uploads import Upload, parse_env_lines
from deployer.errors import InvalidUpload
from deployer.store import deployments
from deployer.store.loglines import status_of
from deployer.store.states import Status
from deployer.supervision import capacity
from web.auth import check_csrf, csrf_token, log_in, log_out, path_token, session_token
from web.services import services

bp = Blueprint("dashboard", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static")  # fmt: skip
CARDS = ("running", "starting", "unhealthy", "crashed", "failed", "stopped")
BOOTING = {s.value for s in Status} - {"running", "unhealthy", "crashed", "failed", "stopped"}


def card_of(status: str) -> str:
    return "starting" if status in BOOTING else status


def _width(pct: float) -> str:
    """A used resource never draws an empty bar, however small its share (as app.js's barWidth)."""
    return f"{min(100.0, max(2.0, pct)) if pct > 0 else 0:.1f}%"


def usage(c: dict[str, Any]) -> dict[str, str]:
    """A container's CPU and memory against its limits, as numbers and bar widths (as app.js's usage)."""
    sample, cpu_limit = c["sample"], c["cpu_millis"] / 1000
    if not sample:
        return {"cpu_width": "0.0%", "mem_width": "0.0%", "cpu_text": "no sample yet", "mem_text": "no sample yet"}
    cpu = 100 * sample["cpu_pct"] / cpu_limit
    mem = 100 * sample["mem_used_mb"] / c["memory_mb"]
    return {"cpu_width": _width(cpu), "mem_width": _width(mem), "cpu_text": f"{cpu:.1f}% of {cpu_limit:g} CPU",
            "mem_text": f"{sample['mem_used_mb']:.0f} of {c['memory_mb']} MB"}  # fmt: skip


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        info = session_token()
        if info is None:
            return redirect(url_for("dashboard.login", next=request.path))
        g.token = info
        if request.method == "POST":
            check_csrf()
        return view(*args, **kwargs)

    return wrapped


def timeline(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each status the deployment entered, from its status lines (which only a transition writes: quoted
    output never reads as one), with how long it stayed there."""
    steps: list[dict[str, Any]] = []
    for line in lines:
        status = status_of(line["stream"], line["text"])
        if status is None:
            continue
        at = datetime.fromisoformat(line["ts"])
        if steps:
            steps[-1]["seconds"] = round((at - steps[-1]["at"]).total_seconds(), 2)
        steps.append({"status": status, "at": at, "ts": line["ts"], "seconds": None, "line_no": line["line_no"]})
    return steps


@bp.get("/")
def index() -> Response:
    return redirect(url_for("dashboard.deployment_list"))  # type: ignore[return-value]


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    error = None
    if request.method == "POST":
        check_csrf()
        if log_in(request.form.get("token", "")) is not None:
            target = request.args.get("next", "")
            safe = target.startswith("/") and not target.startswith("//")
            return redirect(target if safe else url_for("dashboard.deployment_list"))
        error = "That token is unknown or revoked."
    return render_template("login.html", error=error, csrf=csrf_token()), 401 if error else 200


@bp.post("/logout")
@login_required
def logout() -> Response:
    log_out()
    return redirect(url_for("dashboard.login"))  # type: ignore[return-value]


@bp.get("/deployments")
@login_required
def deployment_list() -> str:
    svc = services()
    rows, total = deployments.list_deployments(svc.engine, limit=deployments.MAX_PAGE)
    counts = dict.fromkeys(CARDS, 0)
    for r in rows:
        counts[card_of(r["status"])] = counts.get(card_of(r["status"]), 0) + 1
    stats = capacity.stats(svc.engine, max_active=svc.settings.max_active)
    return render_template("list.html", rows=rows, total=total, counts=counts, stats=stats, card_of=card_of,
                           usage=usage, csrf=csrf_token())  # fmt: skip


@bp.get("/d/<deployment_id>")
@login_required
def deployment_page(deployment_id: str) -> str:
    svc = services()
    row = deployments.get_deployment(svc.engine, deployment_id)
    system = [ln for ln in deployments.log_lines(svc.engine, deployment_id, limit=deployments.MAX_LOG_PAGE)
              if ln["stream"] == "system"]  # fmt: skip
    return render_template("detail.html", d=row, steps=timeline(system), csrf=csrf_token(), card=card_of(row["status"]))


@bp.get("/deployments/<deployment_id>")
def old_deployment_page(deployment_id: str) -> Response:
    """The page's former address; links to it keep working."""
    return redirect(url_for("dashboard.deployment_page", deployment_id=deployment_id), 301)  # type: ignore[return-value]


@bp.post("/deployments/<deployment_id>/stop")  # the former address
@bp.post("/d/<deployment_id>/stop")
@login_required
def stop(deployment_id: str) -> Response:
    services().stop(deployment_id)
    return redirect(url_for("dashboard.deployment_page", deployment_id=deployment_id))  # type: ignore[return-value]


@bp.post("/deployments/<deployment_id>/restart")  # the former address
@bp.post("/d/<deployment_id>/restart")
@login_required
def restart(deployment_id: str) -> Response:
    services().restart(deployment_id)
    return redirect(url_for("dashboard.deployment_page", deployment_id=deployment_id))  # type: ignore[return-value]


@bp.route("/deploy", methods=["GET", "POST"])
@login_required
def deploy() -> Any:
    """The page uploads with JavaScript (progress bar, folders zipped in the browser) to the API;
    a plain form post of a zip lands here and works without JavaScript."""
    if request.method == "GET":
        return render_template("deploy.html", csrf=csrf_token(), error=None)
    bundle = request.files.get("project.zip")
    if bundle is None or not bundle.filename:
        raise InvalidUpload("Choose a project zip (or a folder) to deploy")
    keypair = request.files.get("keypair.json")
    upload = Upload(bundle=bundle.stream, keypair=keypair.read() if keypair and keypair.filename else None,
                    name=request.form.get("name") or None, runtime=None,
                    env=parse_env_lines(request.form.get("env")))  # fmt: skip
    accepted = services().deploy(upload)
    return redirect(url_for("dashboard.deployment_page", deployment_id=accepted.id))


def leave_token_links() -> Response | None:
    """`/t/<token>/d/<id>` (the link `zynd deploy` prints) redirects to `/d/<id>`, signing nobody in:
    a dashboard page is never served under a token path, and the token never reaches a page, a
    `Referer` or the browser's history of pages. Any `/t/<token>/<page>` does the same."""
    if path_token() is None or request.path.startswith(("/api/", "/ws/")) or request.path in ("/api", "/ws"):
        return None
    target = request.script_root + "/" + request.path.lstrip("/")  # never `//host`: that would leave the site
    if request.query_string:
        target += "?" + request.query_string.decode("latin-1")
    resp = redirect(target, 302)
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["Cache-Control"] = "no-store"
    return resp  # type: ignore[return-value]


def init_app(app: Flask) -> None:
    app.before_request(leave_token_links)
    app.register_blueprint(bp)
