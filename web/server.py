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


def run(settings: Settings, *, host: str, port: int, workers: int, threads: int) -> None:
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": threads,
        "timeout": 120,
        "graceful_timeout": 10,
        "accesslog": "-",
    }
    _Gunicorn(settings, options).run()
