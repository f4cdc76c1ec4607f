"""Running the app under gunicorn with threaded workers (long-lived log streams need threads)."""

from __future__ import annotations

from typing import Any

from flask import Flask
from gunicorn import glogging
from gunicorn.app.base import BaseApplication

from deployer.settings import Settings
from web import create_app
from web.pathtoken import mask_logger


class MaskingLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger with path tokens masked in every line, access and error alike. The access
    line is built from `environ["RAW_URI"]`, which `web.pathtoken.PathToken` masks in place; this also
    covers the lines gunicorn writes from its own copy of the request (bad requests, errors)."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        mask_logger(self.error_log)
        mask_logger(self.access_log)


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self._settings = settings
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        # Runs in each worker after fork, so every worker has its own engine and pools.
        return create_app(self._settings)


def gunicorn_options(*, host: str, port: int, workers: int, threads: int) -> dict[str, Any]:
    """Each open log stream (SSE or WebSocket) holds a request thread while it is open, so a worker
    needs about as many threads as streams it should carry; idle threads cost little memory."""
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",  # the sync worker would kill streams at its timeout (NOTES.md)
        "threads": threads,
        "worker_connections": max(1000, threads + 64),
        "timeout": 120,  # the worker heartbeat, not a request limit, under gthread
        "graceful_timeout": 10,
        "keepalive": 5,
        "accesslog": "-",
        "logger_class": "web.server.MaskingLogger",  # no path token in any log line
        # gunicorn 27's control socket defaults to ~/.gunicorn/gunicorn.ctl, one path for every
        # gunicorn of the user: two installations (or `up` beside `serve`) would fight over it
        "control_socket_disable": True,
    }


def run(settings: Settings, *, host: str, port: int, workers: int, threads: int) -> None:
    _Gunicorn(settings, gunicorn_options(host=host, port=port, workers=workers, threads=threads)).run()
