"""Running the app under gunicorn with threaded workers (long-lived log streams need threads)."""

from __future__ import annotations

from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from deployer.settings import Settings
from web import create_app


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
    }


def run(settings: Settings, *, host: str, port: int, workers: int, threads: int) -> None:
    _Gunicorn(settings, gunicorn_options(host=host, port=port, workers=workers, threads=threads)).run()
