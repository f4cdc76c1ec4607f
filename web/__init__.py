"""Flask app factory. Collaborators are passed in; nothing is created at import time."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import Engine

from deployer.bundles.secrets import MasterKey, ensure_master_key
from deployer.localkeys import private_data_root, session_key
from deployer.settings import Settings, load_settings
from deployer.store.db import make_engine
from deployer.store.events import publisher_for
from tasks.kick import make_kicker
from traces.recorder.core import Recorder, recorder_for
from traces.recorder.watchers import event_watcher, install_flask
from traces.recorder.wiring import chain, instrument_engine, instrument_process
from web import api, caddyask, dashboard, errors, ws
from web.hub import Hub
from web.pathtoken import PathToken, mask_server_logs
from web.services import Kick, Services, docker_images
from web.streams import Timing


class Sessions(SecureCookieSessionInterface):
    """Session cookies are `Secure` whenever the request came over TLS: directly, or through Caddy at
    the dashboard host (`X-Forwarded-Proto: https`; the app listens on loopback, and a client that
    sends the header itself only makes its own cookie stricter). Plain-HTTP loopback use keeps working."""

    def get_cookie_secure(self, app: Flask) -> bool:
        forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        return bool(super().get_cookie_secure(app)) or request.is_secure or forwarded == "https"


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
