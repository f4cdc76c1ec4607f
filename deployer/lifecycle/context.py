"""The collaborators a lifecycle step needs, built once per process and passed down explicitly
(`deployer.context.build_context` builds it from the settings)."""

from __future__ import annotations

from dataclasses import dataclass, field

import requests
from sqlalchemy import Engine

from deployer.bundles.secrets import MasterKey
from deployer.interfaces import Clock, ContainerRuntime, ProxyAdmin
from deployer.lifecycle.images import ImageBuilder, stream_build
from deployer.settings import Settings
from deployer.store.events import Publisher
from deployer.store.models import utcnow
from deployer.store.transitions import OnTransition


@dataclass
class Context:
    settings: Settings
    engine: Engine
    master_key: MasterKey
    docker: ContainerRuntime
    caddy: ProxyAdmin | None
    http: requests.Session = field(default_factory=requests.Session)
    now: Clock = utcnow
    on_transition: OnTransition | None = None
    publisher: Publisher | None = None
    installation: str = ""  # labels what this installation owns on Docker (build_context fills it)
    build_image: ImageBuilder = stream_build
