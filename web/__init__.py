"""Flask app factory. Collaborators are passed in; nothing is created at import time."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from flask import Flask, current_app, request
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import Engine

from deployer.bundles.secrets import MasterKey, ensure_master_key
from deployer.bundles.uploads import Accepted, Upload, accept_upload
from deployer.errors import Unavailable
from deployer.lifecycle.images import list_images
from deployer.settings import Settings, load_settings
from deployer.store import deployments
from deployer.store.db import make_engine
from deployer.store.events import publisher_for
from deployer.store.transitions import OnTransition
from tasks.kick import make_kicker
from traces.recorder.core import Recorder, recorder_for
from traces.recorder.watchers import event_watcher, install_flask
from traces.recorder.wiring import chain, instrument_engine, instrument_process
from web.hub import Hub
from web.pathtoken import PathToken, mask_server_logs
from web.streams import Timing

Kick = Callable[[str], None]  # asks the workers to run a named task now (e.g. "drain_queue")


def docker_images() -> list[dict[str, Any]]:
    """The host's labelled images, read-only. The web process talks to Docker for this listing only."""
    import docker

    try:
        return list_images(docker.from_env(timeout=10))
    except docker.errors.DockerException as exc:
        raise Unavailable(f"Docker is not reachable from the web process: {exc}") from None


@dataclass
class Services:
    settings: Settings
    engine: Engine
    master_key: MasterKey
    kick: Kick
    slug_suffix: Callable[[int], str]
    on_transition: OnTransition | None = None
    hub: Hub | None = None  # live fan-out from Redis; None in embedded mode (streams poll the database)
    images: Callable[[], list[dict[str, Any]]] = docker_images
    stream_timing: Timing = field(default_factory=Timing)
    recorder: Recorder | None = None  # the trace recorder, when TRACE_ENABLED

    # The user verbs the API and the dashboard share: the domain call, then the kick that acts on it.
    def deploy(self, upload: Upload) -> Accepted:
        accepted = accept_upload(upload, settings=self.settings, engine=self.engine, master_key=self.master_key,
                                 slug_suffix=self.slug_suffix)  # fmt: skip
        self.kick("drain_queue")
        return accepted

    def stop(self, deployment_id: str) -> str:
        status = deployments.request_stop(self.engine, deployment_id, on_transition=self.on_transition)
        self.kick("reconcile_stops")
        return status

    def restart(self, deployment_id: str) -> str:
        status = deployments.request_restart(self.engine, deployment_id, max_active=self.settings.max_active,
                                             on_transition=self.on_transition)  # fmt: skip
        self.kick("drain_queue")
        return status


class Sessions(SecureCookieSessionInterface):
    """Session cookies are `Secure` whenever the request came over TLS: directly, or through Caddy at
    the dashboard host (`X-Forwarded-Proto: https`; the app listens on loopback, and a client that
    sends the header itself only makes its own cookie stricter). Plain-HTTP loopback use keeps working."""

    def get_cookie_secure(self, app: Flask) -> bool:
        forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        return bool(super().get_cookie_secure(app)) or request.is_secure or forwarded == "https"


def services() -> Services:
    svc: Services = current_app.extensions["deployer"]
    return svc


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    master_key: MasterKey | None = None,
    kick: Kick | None = None,
    slug_suffix: Callable[[int], str] | None = None,
    images: Callable[[], list[dict[str, Any]]] | None = None,
    stream_timing: Timing | None = None,
    recorder: Recorder | None = None,
) -> Flask:
    from deployer.localkeys import private_data_root, session_key
    from web import api, caddyask, dashboard, errors, ws

    settings = settings or load_settings()
    private_data_root(settings)
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=session_key(settings),
        # The zip's own limit is checked by the domain (clear message); this stops absurd bodies early.
        MAX_CONTENT_LENGTH=settings.max_upload_bytes + 4 * 1024 * 1024,
        MAX_FORM_MEMORY_SIZE=4 * 1024 * 1024,
        JSON_SORT_KEYS=False,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",  # nor sent on cross-site subrequests and WebSocket handshakes
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        SOCK_SERVER_OPTIONS={"ping_interval": 25},
    )
    app.session_interface = Sessions()
    recorder = recorder or recorder_for(settings)
    engine = engine or make_engine(settings.database_url)
    publisher = publisher_for(settings.redis_url)
    app.extensions["deployer"] = Services(
        settings=settings,
        engine=engine,
        master_key=master_key or ensure_master_key(settings.age_identity_path),
        kick=kick or make_kicker(settings),
        slug_suffix=slug_suffix or secrets.token_hex,
        on_transition=chain(publisher.status if publisher else None, event_watcher(recorder) if recorder else None),
        hub=Hub(settings.redis_url) if settings.redis_url else None,
        images=images or docker_images,
        stream_timing=stream_timing or Timing(),
        recorder=recorder,
    )
    if recorder is not None:
        install_flask(app, recorder)
        instrument_engine(engine, recorder)
        instrument_process(recorder)
    # Outermost, so the token is off the path before anything routes, records or logs it.
    app.wsgi_app = PathToken(app.wsgi_app)  # type: ignore[method-assign]
    mask_server_logs()
    errors.init_app(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(caddyask.bp)
    ws.init_app(app)
    dashboard.init_app(app)
    return app
