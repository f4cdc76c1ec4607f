"""The collaborators every view shares, kept on the Flask app (`services()` reads them back).

Apart from the app factory so that the views can import it while the factory imports the views."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from sqlalchemy import Engine

from deployer.bundles.secrets import MasterKey
from deployer.bundles.uploads import Accepted, Upload, accept_upload
from deployer.errors import Unavailable
from deployer.lifecycle.images import list_images
from deployer.settings import Settings
from deployer.store import deployments
from deployer.store.transitions import OnTransition
from traces.recorder.core import Recorder
from web.hub import Hub
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


def services() -> Services:
    svc: Services = current_app.extensions["deployer"]
    return svc
