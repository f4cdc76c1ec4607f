"""The collaborators a lifecycle step needs, built once per process and passed down explicitly
(`deployer.context.build_context` builds it from the settings)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests
from sqlalchemy import Engine

from deployer.bundles.secrets import MasterKey
from deployer.lifecycle.caddy import CaddyAdmin
from deployer.settings import Settings
from deployer.store.events import Publisher
from deployer.store.models import utcnow
from deployer.store.transitions import OnTransition


@dataclass
class Context:
    settings: Settings
    engine: Engine
    master_key: MasterKey
    docker: Any
    caddy: CaddyAdmin | None
    http: requests.Session = field(default_factory=requests.Session)
    now: Callable[[], datetime] = utcnow
    on_transition: OnTransition | None = None
    publisher: Publisher | None = None
    installation: str = ""  # labels what this installation owns on Docker (build_context fills it)
