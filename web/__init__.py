"""Flask app factory. Collaborators are passed in; nothing is created at import time."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, current_app
from sqlalchemy import Engine

from deployer.db import make_engine
from deployer.events import publisher_for
from deployer.secrets import MasterKey, ensure_master_key
from deployer.settings import Settings, load_settings
from deployer.transitions import OnTransition
from tasks.kick import make_kicker

Kick = Callable[[str], None]  # asks the workers to run a named task now (e.g. "drain_queue")


@dataclass
class Services:
    settings: Settings
    engine: Engine
    master_key: MasterKey
    kick: Kick
    slug_suffix: Callable[[int], str]
    on_transition: OnTransition | None = None


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
) -> Flask:
    from web import api, errors

    settings = settings or load_settings()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        # The zip's own limit is checked by the domain (clear message); this stops absurd bodies early.
        MAX_CONTENT_LENGTH=settings.max_upload_bytes + 4 * 1024 * 1024,
        MAX_FORM_MEMORY_SIZE=4 * 1024 * 1024,
        JSON_SORT_KEYS=False,
    )
    app.extensions["deployer"] = Services(
        settings=settings,
        engine=engine or make_engine(settings.database_url),
        master_key=master_key or ensure_master_key(settings.age_identity_path),
        kick=kick or make_kicker(settings),
        slug_suffix=slug_suffix or secrets.token_hex,
        on_transition=(publisher.status if (publisher := publisher_for(settings.redis_url)) else None),
    )
    errors.init_app(app)
    app.register_blueprint(api.bp)
    return app
