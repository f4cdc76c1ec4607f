"""`GET /api/openapi.json`: the API of docs/architecture.md#http-api as OpenAPI 3.1, written out by hand (it is the
contract; tests validate it and run schemathesis against the live app to hold the code to it)."""

from __future__ import annotations

from typing import Any

from deployer.store.states import Status

STATUSES = [s.value for s in Status]
TS = {"type": "string", "format": "date-time"}
NULL_TS = {"type": ["string", "null"], "format": "date-time"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "Invalid request",
        401: "Missing or invalid token",
        403: "CSRF check failed (session callers)",
        404: "No such deployment",
        409: "Conflict",
        413: "Upload too large",
        503: "Unavailable or at capacity",
    }
    return {str(c): _json(_ref("Error"), text[c]) for c in codes}


ID_PARAM = {"name": "deployment_id", "in": "path", "required": True, "schema": {"type": "string"}}
AUTHED = (401, 403)


def _deployment_schema() -> dict[str, Any]:
    nullable_str = {"type": ["string", "null"]}
    nullable_int = {"type": ["integer", "null"]}
    props: dict[str, Any] = {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "slug": {"type": "string"},
        "entity_type": {"enum": ["agent", "service"]},
        "runtime": {"enum": ["python", "node"]},
        "status": {"enum": STATUSES},
        "error_message": nullable_str,
        "port": nullable_int,
        "container_id": nullable_str,
        "image": nullable_str,
        "registry_url": nullable_str,
        "public_key_b64": nullable_str,
        "entity_id": nullable_str,
        "memory_mb": {"type": "integer"},
        "cpu_millis": {"type": "integer"},
        "last_exit_code": nullable_int,
        "last_crash_at": NULL_TS,
        "restart_count": {"type": "integer"},
        "created_at": TS,
        "started_at": NULL_TS,
        "stopped_at": NULL_TS,
        "updated_at": TS,
        "url": nullable_str,
        "env_keys": {"type": "array", "items": {"type": "string"}},
    }
    return {"type": "object", "required": list(props), "properties": props}


def _schemas() -> dict[str, Any]:
    sample = {
        "type": "object",
        "required": ["sampled_at", "mem_used_mb", "mem_limit_mb", "cpu_pct"],
        "properties": {
            "sampled_at": TS,
            "mem_used_mb": {"type": "number"},
            "mem_limit_mb": {"type": "number"},
            "cpu_pct": {"type": "number", "description": "fraction of one logical CPU (0..N)"},
        },
    }
    line = {
        "type": "object",
        "required": ["line_no", "stream", "text", "ts"],
        "properties": {
            "line_no": {"type": "integer"},
            "stream": {"enum": ["stdout", "stderr", "system"]},
            "text": {"type": "string"},
            "ts": TS,
        },
    }
    container = {
        "type": "object",
        "required": ["id", "name", "slug", "status", "memory_mb", "cpu_millis", "sample"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "slug": {"type": "string"},
            "status": {"enum": STATUSES},
            "memory_mb": {"type": "integer"},
            "cpu_millis": {"type": "integer"},
            "sample": {"oneOf": [_ref("Sample"), {"type": "null"}]},
        },
    }
    return {
        "Error": {
            "type": "object",
            "required": ["error", "code"],
            "additionalProperties": False,
            "properties": {
                "error": {"type": "string", "description": "a readable message"},
                "code": {
                    "type": "string",
                    "pattern": "^[A-Z][A-Z0-9_]*$",
                    "description": "e.g. INVALID_UPLOAD, SLUG_TAKEN, NOT_FOUND, UNAUTHORIZED",
                },
            },
        },
        "Deployment": _deployment_schema(),
        "DeploymentList": {
            "type": "object",
            "required": ["deployments", "total"],
            "properties": {"deployments": {"type": "array", "items": _ref("Deployment")}, "total": {"type": "integer"}},
        },
        "Created": {
            "type": "object",
            "required": ["id", "slug", "status", "runtime", "image", "url"],
            "properties": {
                "id": {"type": "string"},
                "slug": {"type": "string"},
                "status": {"enum": STATUSES},
                "runtime": {"enum": ["python", "node"], "description": "detected at upload"},
                "image": {"type": ["string", "null"], "description": "the built image; null until built"},
                "url": {"type": ["string", "null"]},
            },
        },
        "Accepted": {
            "type": "object",
            "required": ["id", "status"],
            "properties": {"id": {"type": "string"}, "status": {"enum": STATUSES}},
        },
        "LogLine": line,
        "Logs": {
            "type": "object",
            "required": ["lines"],
            "properties": {"lines": {"type": "array", "items": _ref("LogLine")}},
        },
        "Sample": sample,
        "Samples": {
            "type": "object",
            "required": ["samples"],
            "properties": {"samples": {"type": "array", "items": _ref("Sample")}},
        },
        "Stats": {
            "type": "object",
            "required": ["max_active", "active", "free", "memory", "containers"],
            "properties": {
                "max_active": {"type": "integer"},
                "active": {"type": "integer"},
                "free": {"type": "integer"},
                "memory": {
                    "type": "object",
                    "required": ["reserved_mb", "used_mb"],
                    "properties": {"reserved_mb": {"type": "number"}, "used_mb": {"type": "number"}},
                },
                "containers": {"type": "array", "items": container},
            },
        },
        "Images": {
            "type": "object",
            "required": ["images"],
            "properties": {"images": {"type": "array", "items": {"type": "object"}}},
        },
        "Health": {"type": "object", "required": ["status"], "properties": {"status": {"enum": ["ok", "degraded"]}}},
    }


def int_q(name: str, desc: str, **bounds: int) -> dict[str, Any]:
    schema = {"type": "integer", "minimum": -(2**62) + 1, "maximum": 2**62 - 1, **bounds}  # what parse_int takes
    return {"name": name, "in": "query", "required": False, "description": desc, "schema": schema}


def _paths() -> dict[str, Any]:
    one = {"parameters": [ID_PARAM]}
    accepted = _json(_ref("Accepted"), "Accepted; the workers carry it out")
    upload = {
        "type": "object",
        "required": ["project.zip"],
        "properties": {
            "project.zip": {"type": "string", "contentMediaType": "application/zip"},
            "keypair.json": {"type": "string", "contentMediaType": "application/json"},
            "name": {"type": "string"},
            "runtime": {"enum": ["python", "node"]},
            "env": {"type": "string", "description": "JSON object of string values"},
            "image": {
                "type": "string",
                "description": "a prebuilt image `zynd deploy --image` asks for: noted in "
                "the log, not used (each deployment is built from its runtime base image)",
            },
        },
    }
    return {
        "/api/health": {
            "get": {
                "summary": "The web app's own health (database, Redis)",
                "security": [],
                "responses": {"200": _json(_ref("Health"), "Healthy"), "503": _json(_ref("Health"), "Degraded")},
            }
        },
        "/api/deployments": {
            "post": {
                "summary": "Upload a bundle and queue its deployment",
                "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": upload}}},
                "responses": {"201": _json(_ref("Created"), "Queued"), **_errors(400, *AUTHED, 409, 413, 503)},
            },
            "get": {
                "summary": "List deployments, newest first",
                "parameters": [
                    {"name": "status", "in": "query", "required": False, "schema": {"enum": STATUSES}},
                    int_q("limit", "page size", minimum=1, maximum=500),
                    int_q("offset", "rows to skip", minimum=0),
                ],
                "responses": {"200": _json(_ref("DeploymentList"), "A page"), **_errors(400, *AUTHED)},
            },
        },
        "/api/deployments/{deployment_id}": {
            **one,
            "get": {
                "summary": "One deployment (never paths or secrets)",
                "responses": {"200": _json(_ref("Deployment"), "The row"), **_errors(*AUTHED, 404)},
            },
            "delete": {
                "summary": "Stop (same as POST …/stop)",
                "responses": {"202": accepted, **_errors(*AUTHED, 404)},
            },
        },
        "/api/deployments/{deployment_id}/stop": {
            **one,
            "post": {"summary": "Stop; idempotent", "responses": {"202": accepted, **_errors(400, *AUTHED, 404)}},
        },
        "/api/deployments/{deployment_id}/restart": {
            **one,
            "post": {
                "summary": "Re-run a crashed, stopped or failed deployment from its built image",
                "responses": {"202": accepted, **_errors(*AUTHED, 404, 409, 503)},
            },
        },
        "/api/deployments/{deployment_id}/logs": {
            **one,
            "get": {
                "summary": "Log lines after a line number",
                "parameters": [
                    int_q("after", "last line the caller has"),
                    int_q("limit", "at most", minimum=1, maximum=2000),
                ],
                "responses": {"200": _json(_ref("Logs"), "Lines in order"), **_errors(400, *AUTHED, 404)},
            },
        },
        "/api/deployments/{deployment_id}/logs/stream": {
            **one,
            "get": {
                "summary": "Server-sent events: `log` (id = line number; the last 500, then live), `ready`, "
                "`status`, `done`; `: keepalive` comments; resumes after `Last-Event-ID`",
                "parameters": [int_q("after", "resume after this line (also Last-Event-ID)")],
                "responses": {
                    "200": {
                        "description": "An event stream",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    **_errors(400, *AUTHED, 404),
                },
            },
        },
        "/api/deployments/{deployment_id}/metrics": {
            **one,
            "get": {
                "summary": "CPU and memory samples, oldest first",
                "parameters": [
                    {
                        "name": "since",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "format": "date-time"},
                    },
                    int_q("limit", "at most", minimum=1, maximum=2000),
                ],
                "responses": {"200": _json(_ref("Samples"), "Samples"), **_errors(400, *AUTHED, 404)},
            },
        },
        "/api/stats": {
            "get": {
                "summary": "Capacity and the latest sample of each container",
                "responses": {"200": _json(_ref("Stats"), "Capacity"), **_errors(*AUTHED)},
            }
        },
        "/api/images": {
            "get": {
                "summary": "Labelled images on the host",
                "responses": {"200": _json(_ref("Images"), "Images"), **_errors(*AUTHED, 503)},
            }
        },
        "/api/openapi.json": {
            "get": {
                "summary": "This document",
                "security": [],
                "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1")},
            }
        },
    }


def spec() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Deployer API",
            "version": "1",
            "description": 'Errors are {"error": "<readable message>", "code": "<CODE>"}. '
            "Auth: `Authorization: Bearer <token>`, or the token as a path prefix: every route below also "
            "answers at /t/{token}/api/…, exactly as with the header (for clients that send no header, such "
            "as `zynd deploy --deployer <base>/t/<token>`). "
            "A WebSocket log stream is at "
            "/ws/deployments/{id}/logs?after=N (frames {type: hello|log|ready|status|done|error}; also under "
            "/t/{token}).",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": _schemas(),
        },
        "paths": _paths(),
    }
