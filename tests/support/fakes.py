"""In-memory stand-ins for Docker, Caddy, the clock, image builds and what containers serve over HTTP.

They have the shapes of `deployer.interfaces` (the parts of docker-py, `CaddyAdmin` and `images.stream_build`
the domain uses) and raise what the real ones raise, so lifecycle rules run in milliseconds without any
service. A test scripts them: how a container behaves (`FakeRuntime.behaviour`), which builds fail
(`FakeBuilder.fail_with`), when the proxy refuses (`FakeProxy.fail_with`).
"""

from __future__ import annotations

import builtins
import io
import itertools
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import docker.errors
import requests
import urllib3
from requests.adapters import HTTPAdapter

from deployer.lifecycle.images import BuildFailed, BuildLimits

_ids = itertools.count(1)


class FakeClock:
    """A wall clock that moves only when told to."""

    def __init__(self, start: datetime = datetime(2030, 1, 1, tzinfo=UTC)) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


@dataclass
class Behaviour:
    """How the next containers run: whether /health answers, what they print, and an optional entity id."""

    healthy: bool = True
    output: list[str] = field(default_factory=list)
    exit_on_start: int | None = None  # the container dies at once with this exit code
    entity_id: str | None = None


@dataclass
class FakeContainer:
    id: str
    name: str
    labels: dict[str, str]
    spec: dict[str, Any]
    behaviour: Behaviour
    status: str = "running"
    exit_code: int = 0
    oom: bool = False
    removed: bool = False

    @property
    def attrs(self) -> dict[str, Any]:
        running = self.status == "running"
        state = {"Running": running, "ExitCode": 0 if running else self.exit_code, "OOMKilled": self.oom, "Error": ""}
        return {"State": state}

    @property
    def port(self) -> int:
        return int(next(iter(self.spec["ports"].values()))[1])

    def logs(self, *, stdout: bool = True, stderr: bool = True, tail: int | str = "all") -> bytes:
        lines = self.behaviour.output if tail == "all" else self.behaviour.output[-int(tail) :]
        return "".join(f"{ln}\n" for ln in lines).encode()

    def stop(self, timeout: int = 10) -> None:
        self.die(143)

    def remove(self, force: bool = False) -> None:
        self.removed = True

    def die(self, exit_code: int, *, oom: bool = False) -> None:
        self.status, self.exit_code, self.oom = "exited", exit_code, oom


class FakeContainers:
    def __init__(self, runtime: FakeRuntime) -> None:
        self.runtime = runtime
        self.by_id: dict[str, FakeContainer] = {}
        self.run_error: Exception | None = None  # what the next `run` raises (a refused port, a missing image)

    def _live(self) -> Iterator[FakeContainer]:
        return (c for c in self.by_id.values() if not c.removed)

    def get(self, container_id: str) -> FakeContainer:
        for c in self._live():
            if container_id in (c.id, c.name):
                return c
        raise docker.errors.NotFound(f"No such container: {container_id}")

    def run(self, **spec: Any) -> FakeContainer:
        if self.run_error is not None:
            raise self.run_error
        if spec["image"] not in self.runtime.images.tags:
            raise docker.errors.ImageNotFound(f"No such image: {spec['image']}")
        behaviour = self.runtime.behaviour
        c = FakeContainer(f"{next(_ids):064x}", spec["name"], dict(spec["labels"]), dict(spec), behaviour)
        self.by_id[c.id] = c
        if behaviour.exit_on_start is not None:
            c.die(behaviour.exit_on_start)
        return c

    def list(self, *, all: bool = False, filters: Mapping[str, Any] | None = None) -> list[FakeContainer]:
        wanted = list((filters or {}).get("label", []))
        found = [c for c in self._live() if all or c.status == "running"]
        return [c for c in found if builtins.all(_has_label(c.labels, w) for w in wanted)]


def _has_label(labels: Mapping[str, str], wanted: str) -> bool:
    key, sep, value = wanted.partition("=")
    return key in labels and (not sep or labels[key] == value)


@dataclass
class FakeNetwork:
    name: str
    options: dict[str, Any]


class FakeNetworks:
    def __init__(self) -> None:
        self.made: list[FakeNetwork] = []

    def list(self, *, names: list[str] | None = None) -> list[FakeNetwork]:
        return [n for n in self.made if names is None or n.name in names]

    def create(self, name: str, **options: Any) -> FakeNetwork:
        self.made.append(FakeNetwork(name, options))
        return self.made[-1]


@dataclass
class FakeImage:
    id: str
    tags: list[str]
    labels: dict[str, str]


class FakeImages:
    def __init__(self) -> None:
        self.tags: dict[str, FakeImage] = {}

    def add(self, tag: str, labels: Mapping[str, str] | None = None) -> FakeImage:
        image = FakeImage(f"sha256:{next(_ids):064x}", [tag], dict(labels or {}))
        self.tags[tag] = image
        return image

    def get(self, name: str) -> FakeImage:
        if name not in self.tags:
            raise docker.errors.ImageNotFound(f"No such image: {name}")
        return self.tags[name]

    def list(self, *, filters: Mapping[str, Any] | None = None) -> list[FakeImage]:
        return list(self.tags.values())


class FakeRuntime:
    """The Docker client (`deployer.interfaces.ContainerRuntime`) as a few dictionaries."""

    def __init__(self) -> None:
        self.containers = FakeContainers(self)
        self.networks = FakeNetworks()
        self.images = FakeImages()
        self.behaviour = Behaviour()

    @property
    def api(self) -> Any:
        raise AssertionError("the domain tier fakes builds and log streams; nothing may reach the low-level API")

    def events(self, **options: Any) -> Iterator[dict[str, Any]]:
        return iter(())

    def serving(self, port: int) -> FakeContainer | None:
        """The running container published on `port`, if any."""
        return next((c for c in self.containers._live() if c.status == "running" and c.port == port), None)


class FakeBuilder:
    """`images.stream_build` without Docker: prints a few lines and tags an image, or fails as told."""

    def __init__(self, runtime: FakeRuntime) -> None:
        self.runtime = runtime
        self.built: list[str] = []
        self.fail_with: str | None = None
        self.lines = ["Step 1/2 : FROM base", "Step 2/2 : COPY app /app", "Successfully built"]

    def __call__(self, client: Any, *, context: bytes, tag: str, on_line: Callable[[str], None],
                 limits: BuildLimits) -> None:  # fmt: skip
        assert context, "an empty build context"
        for line in self.lines:
            on_line(line)
        if self.fail_with is not None:
            raise BuildFailed(self.fail_with)
        self.built.append(tag)
        self.runtime.images.add(tag, {"deployer.managed": "true"})


class FakeProxy:
    """`CaddyAdmin` (`deployer.interfaces.ProxyAdmin`) as a dictionary of routes."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[str, str, int]] = {}
        self.servers_ensured = 0
        self.fail_with: Exception | None = None

    def ensure_server(self, listen: str | None = None) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.servers_ensured += 1

    def upsert_route(self, deployment_id: str, slug: str, domain: str, port: int) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.routes[f"deployer-{deployment_id}"] = (slug, domain, port)

    def remove_route(self, deployment_id: str) -> None:
        self.routes.pop(f"deployer-{deployment_id}", None)

    def route_ids(self) -> list[str]:
        return list(self.routes)


class FakeServing(HTTPAdapter):
    """A requests transport that answers for the fake containers: `/health` is 200 while the container on
    that port runs and is healthy; the agent card carries its entity id when it has one. Mounted on a real
    `requests.Session`, so the probes' redirects, timeouts and bounded reads work as they do for real."""

    def __init__(self, runtime: FakeRuntime) -> None:
        super().__init__()
        self.runtime = runtime
        self.lock = threading.Lock()
        self.requests: list[str] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        url = urllib3.util.parse_url(request.url or "")
        with self.lock:
            self.requests.append(url.path or "/")
        status, body = self._answer(url.port or 80, url.path or "/")
        if status == 0:
            raise requests.ConnectionError(f"connection refused: {request.url}")
        raw = urllib3.HTTPResponse(body=io.BytesIO(body), status=status, preload_content=False,
                                   headers={"Content-Type": "application/json"})  # fmt: skip
        return self.build_response(request, raw)

    def _answer(self, port: int, path: str) -> tuple[int, bytes]:
        c = self.runtime.serving(port)
        if c is None:
            return 0, b""
        if path == "/health":
            doc = {"status": "ok", **({"entity_id": c.behaviour.entity_id} if c.behaviour.entity_id else {})}
            return (200, json.dumps(doc).encode()) if c.behaviour.healthy else (503, b"{}")
        if path == "/.well-known/agent-card.json" and c.behaviour.entity_id:
            return 200, json.dumps({"entity_id": c.behaviour.entity_id}).encode()
        return 404, b"{}"


def fake_http(runtime: FakeRuntime) -> requests.Session:
    session = requests.Session()
    session.mount("http://127.0.0.1", FakeServing(runtime))
    return session
