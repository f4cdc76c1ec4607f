"""The JSON API (docs/architecture.md#http-api). Every route but /api/health and /api/openapi.json needs a token:
`Authorization: Bearer <token>`, or the path prefix `/t/<token>` (`web.pathtoken`), or a dashboard session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, jsonify, request, stream_with_context

from deployer.bundles.uploads import Upload, parse_env
from deployer.errors import InvalidRequest, InvalidUpload
from deployer.store import deployments
from deployer.supervision import capacity, readiness
from web.auth import authenticate, token_watch
from web.openapi import spec
from web.services import services
from web.streams import DbSource, Event, LogStream, sse_format

bp = Blueprint("api", __name__, url_prefix="/api")
PUBLIC_ENDPOINTS = {"api.health", "api.openapi"}


@bp.before_request
def require_token() -> None:
    if request.endpoint not in PUBLIC_ENDPOINTS:
        authenticate()


def _int_arg(name: str, default: int) -> int:
    return parse_int(name, request.args.get(name), default)


def parse_int(name: str, raw: str | None, default: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(f"{name} must be an integer") from None
    if not -(2**62) < value < 2**62:
        raise InvalidRequest(f"{name} is out of range")
    return value


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
        image=request.form.get("image") or None,
    )
    accepted = svc.deploy(upload)
    body: dict[str, Any] = {
        "id": accepted.id, "slug": accepted.slug, "status": accepted.status,
        "runtime": accepted.runtime, "image": accepted.image, "url": accepted.url,
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
    status = services().stop(deployment_id)
    return jsonify({"id": deployment_id, "status": status}), 202


@bp.post("/deployments/<deployment_id>/restart")
def restart_deployment(deployment_id: str) -> tuple[Response, int]:
    status = services().restart(deployment_id)
    return jsonify({"id": deployment_id, "status": status}), 202


@bp.get("/deployments/<deployment_id>/logs")
def get_logs(deployment_id: str) -> Response:
    lines = deployments.log_lines(
        services().engine, deployment_id, after=_int_arg("after", 0), limit=_int_arg("limit", 500)
    )
    return jsonify({"lines": lines})


@bp.get("/deployments/<deployment_id>/logs/stream")
def stream_logs(deployment_id: str) -> Response:
    svc = services()
    deployments.get_deployment(svc.engine, deployment_id)  # 404 before the stream starts
    resume = request.headers.get("Last-Event-ID")
    after = parse_int("Last-Event-ID", resume, -1) if resume else _int_arg("after", -1)
    sub = svc.hub.subscribe(deployment_id) if svc.hub is not None else None
    stream = LogStream(DbSource(svc.engine, deployment_id), after=None if after < 0 else after, sub=sub,
                       timing=svc.stream_timing)  # fmt: skip

    watch = token_watch()

    def body() -> Iterator[str]:
        try:
            yield "retry: 2000\n\n"
            for event in stream.events():
                if not watch.live():
                    yield sse_format(Event("error", {"error": "The API token was revoked", "code": "UNAUTHORIZED"}))
                    return
                yield sse_format(event)
        finally:
            if sub is not None:
                sub.close()

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return Response(stream_with_context(body()), mimetype="text/event-stream", headers=headers)


@bp.get("/deployments/<deployment_id>/metrics")
def get_metrics(deployment_id: str) -> Response:
    since = capacity.parse_since(request.args.get("since"))
    limit = _int_arg("limit", capacity.MAX_SAMPLES)
    return jsonify({"samples": capacity.samples(services().engine, deployment_id, since=since, limit=limit)})


@bp.get("/stats")
def get_stats() -> Response:
    svc = services()
    return jsonify(capacity.stats(svc.engine, max_active=svc.settings.max_active))


@bp.get("/images")
def get_images() -> Response:
    return jsonify({"images": services().images()})


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(spec())
