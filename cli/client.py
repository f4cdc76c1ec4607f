"""A small client for the deployer's HTTP API, used by the CLI's user commands."""

from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from deployer.errors import DeployerError


class ApiError(DeployerError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{message} (HTTP {status}, {code})")
        self.status = status
        self.code = code


def has_path_token(base_url: str) -> bool:
    """Whether the base URL carries the token as a path prefix (`<base>/t/<token>`)."""
    return "/t/" in urlsplit(base_url).path + "/"


def unreachable(base_url: str) -> str:
    """The message when nothing answers: which URL, where it came from, and how to fix it."""
    shown = re.sub(r"/t/[^/]+", "/t/***", base_url)
    return (f"Cannot reach the deployer at {shown} (DEPLOYER_URL). Is `deployer up` running, and on that port? "
            "It prints the `export DEPLOYER_URL=…` line to use.")  # fmt: skip


def api_error(status: int, body: Any, reason: str | None) -> ApiError:
    """The API answers errors as `{"error": "<message>", "code": "<CODE>"}`; anything else (a proxy's
    HTML page, an empty body) still gives a readable error with the HTTP status."""
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return ApiError(status, str(body.get("code") or "ERROR"), body["error"])
    return ApiError(status, "HTTP_ERROR", reason or "request failed")


UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def pick(ref: str, rows: list[dict[str, Any]]) -> str:
    """The deployment `ref` names, as docker names containers: a full id, the slug, or a prefix of the
    id that only one deployment has. Ambiguous or unknown: an error saying which ones, or none."""
    for row in rows:
        if ref in (row["id"], row["slug"]):
            return str(row["id"])
    matches = [row for row in rows if row["id"].startswith(ref.lower())] if ref else []
    if len(matches) == 1:
        return str(matches[0]["id"])
    if matches:
        listed = "\n".join(f"  {m['id']}  {m['slug']}" for m in matches[:20])
        more = f"\n  … and {len(matches) - 20} more" if len(matches) > 20 else ""
        raise ApiError(409, "AMBIGUOUS", f"{ref!r} matches {len(matches)} deployments; give more of the id "
                                         f"or the slug:\n{listed}{more}")  # fmt: skip
    raise ApiError(404, "NOT_FOUND", f"No deployment matches {ref!r} (by id, id prefix or slug)")


class ProgressReader(io.RawIOBase):
    """A body that reports how many bytes requests has sent, so the CLI can draw upload progress."""

    def __init__(self, data: bytes, on_progress: Callable[[int], None]) -> None:
        self._buf = io.BytesIO(data)
        self._len = len(data)
        self._on_progress = on_progress

    def __len__(self) -> int:
        return self._len

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self._buf.read(64 * 1024 if size is None or size < 0 else min(size, 64 * 1024))
        if chunk:
            self._on_progress(len(chunk))
        return chunk


def multipart(fields: Mapping[str, str], files: Mapping[str, tuple[str, bytes, str]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
        out.write(value.encode() + b"\r\n")
    for name, (filename, data, ctype) in files.items():
        out.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: {ctype}\r\n\r\n".encode()
        )
        out.write(data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


class ApiClient:
    def __init__(self, base_url: str, token: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self.timeout)
        try:
            resp = self.session.request(method, self.base_url + path, **kwargs)
        except requests.ConnectionError:
            raise ApiError(0, "UNREACHABLE", unreachable(self.base_url)) from None
        try:
            body = resp.json()
        except json.JSONDecodeError:
            body = None
        if resp.status_code >= 400:
            raise api_error(resp.status_code, body, resp.reason)
        return body

    def deploy(
        self,
        bundle: bytes,
        *,
        keypair: bytes | None,
        name: str | None,
        env: Mapping[str, str],
        on_progress: Callable[[int], None] = lambda _n: None,
    ) -> dict[str, Any]:
        fields = {"env": json.dumps(dict(env))} if env else {}
        if name:
            fields["name"] = name
        files = {"project.zip": ("project.zip", bundle, "application/zip")}
        if keypair is not None:
            files["keypair.json"] = ("keypair.json", keypair, "application/json")
        body, ctype = multipart(fields, files)
        data = ProgressReader(body, on_progress)
        result: dict[str, Any] = self._call(
            "POST", "/api/deployments", data=data, headers={"Content-Type": ctype}, timeout=max(self.timeout, 300)
        )
        return result

    def deployments(self, status: str | None = None, limit: int = 100) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if status:
            params["status"] = status
        result: dict[str, Any] = self._call("GET", "/api/deployments", params=params)
        return result

    def resolve(self, ref: str) -> str:
        """A deployment's id from its id, slug or a unique id prefix (see `pick`)."""
        if UUID.match(ref):
            return ref
        rows: list[dict[str, Any]] = []
        while True:
            page = self._call("GET", "/api/deployments", params={"limit": 500, "offset": len(rows)})
            rows += page["deployments"]
            if not page["deployments"] or len(rows) >= page["total"]:
                return pick(ref, rows)

    def get(self, deployment_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/api/deployments/{deployment_id}")
        return result

    def stop(self, deployment_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/api/deployments/{deployment_id}/stop")
        return result

    def restart(self, deployment_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/api/deployments/{deployment_id}/restart")
        return result

    def logs(self, deployment_id: str, after: int = 0, limit: int = 500) -> list[dict[str, Any]]:
        body = self._call("GET", f"/api/deployments/{deployment_id}/logs", params={"after": after, "limit": limit})
        lines: list[dict[str, Any]] = body["lines"]
        return lines
