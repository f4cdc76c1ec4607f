"""The JSON API (DESIGN §10). Every route but /api/health needs `Authorization: Bearer <token>`."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from deployer import deployments, readiness, tokens
from deployer.errors import InvalidRequest, InvalidUpload, Unauthorized
from deployer.uploads import Upload, accept_upload, parse_env
from web import services

bp = Blueprint("api", __name__, url_prefix="/api")
PUBLIC_ENDPOINTS = {"api.health"}


@bp.before_request
def require_token() -> None:
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Missing API token: send Authorization: Bearer <token>")
    info = tokens.verify_token(services().engine, token.strip())
    if info is None:
        raise Unauthorized("Invalid or revoked API token")
    g.token = info


def _int_arg(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidRequest(f"{name} must be an integer") from None


@bp.get("/health")
def health() -> tuple[Response, int]:
    svc = services()
    report = readiness.check(svc.engine, svc.settings.redis_url)
    ok = readiness.is_ready(report)
    return jsonify({"status": "ok" if ok else "degraded", **report}), 200 if ok else 503


@bp.post("/deployments")
def create_deployment() -> tuple[Response, int]:
    svc = services()
    bundle = request.files.get("project.zip")
    if bundle is None:
        raise InvalidUpload("project.zip is required (multipart field 'project.zip')")
    keypair_file = request.files.get("keypair.json")
    upload = Upload(
        bundle=bundle.stream,
        keypair=keypair_file.read() if keypair_file is not None else None,
        name=request.form.get("name") or None,
        runtime=request.form.get("runtime") or None,
        env=parse_env(request.form.get("env")),
    )
    accepted = accept_upload(
        upload, settings=svc.settings, engine=svc.engine, master_key=svc.master_key, slug_suffix=svc.slug_suffix
    )
    svc.kick("drain_queue")
    body: dict[str, Any] = {
        "id": accepted.id, "slug": accepted.slug, "status": accepted.status,
        "runtime": accepted.runtime, "url": accepted.url,
    }  # fmt: skip
    return jsonify(body), 201


@bp.get("/deployments")
def list_deployments() -> Response:
    rows, total = deployments.list_deployments(
        services().engine,
        status=request.args.get("status") or None,
        limit=_int_arg("limit", 50),
        offset=_int_arg("offset", 0),
    )
    return jsonify({"deployments": rows, "total": total})


@bp.get("/deployments/<deployment_id>")
def get_deployment(deployment_id: str) -> Response:
    return jsonify(deployments.get_deployment(services().engine, deployment_id))


@bp.post("/deployments/<deployment_id>/stop")
@bp.delete("/deployments/<deployment_id>")
def stop_deployment(deployment_id: str) -> tuple[Response, int]:
    svc = services()
    status = deployments.request_stop(svc.engine, deployment_id, on_transition=svc.on_transition)
    svc.kick("reconcile_stops")
    return jsonify({"id": deployment_id, "status": status}), 202


@bp.post("/deployments/<deployment_id>/restart")
def restart_deployment(deployment_id: str) -> tuple[Response, int]:
    svc = services()
    status = deployments.request_restart(
        svc.engine, deployment_id, max_active=svc.settings.max_active, on_transition=svc.on_transition
    )
    svc.kick("drain_queue")
    return jsonify({"id": deployment_id, "status": status}), 202


@bp.get("/deployments/<deployment_id>/logs")
def get_logs(deployment_id: str) -> Response:
    lines = deployments.log_lines(
        services().engine, deployment_id, after=_int_arg("after", 0), limit=_int_arg("limit", 500)
    )
    return jsonify({"lines": lines})
