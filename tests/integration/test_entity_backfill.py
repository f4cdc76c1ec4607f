"""The entity id backfill against a tiny real HTTP server: the agent card as the real Zynd SDK
publishes it (`x-zynd.entityId`, nothing at the top level), the older `/.well-known/agent.json`,
`entity_id` in `/health`; and the probes' manners (no redirects, bounded reads, one deadline)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from sqlalchemy import text

from deployer.lifecycle.context import Context
from deployer.lifecycle.entity import DEADLINE_S, MAX_BYTES, find_entity_id
from deployer.settings import load_settings
from deployer.store.db import make_engine, upgrade
from deployer.store.models import utcnow
from deployer.supervision.probes import ENTITY_WINDOW, probe_all
from tests.support.rows import make_deployment_row

CARD_PATH, OLD_PATH = "/.well-known/agent-card.json", "/.well-known/agent.json"
ENTITY = "zns:8f3c2a1b9d4e5f60718293a4b5c6d7e8"
# The shape of the card `zyndai-agent` 0.6.5 serves (abridged): the id lives only under x-zynd; the
# only top-level-looking `id` is a skill's.
CARD = {
    "protocolVersion": "0.3.0", "name": "Echo Agent", "description": "echoes", "version": "0.1.0",
    "url": "http://localhost:5000/a2a", "preferredTransport": "JSONRPC",
    "capabilities": {"streaming": False}, "defaultInputModes": ["text/plain"], "defaultOutputModes": ["text/plain"],
    "skills": [{"id": "default", "name": "Echo Agent", "description": "echoes"}],
    "securitySchemes": {"zyndSig": {"type": "http", "scheme": "ed25519-envelope"}}, "security": [{"zyndSig": []}],
    "x-zynd": {"version": 1, "entityId": ENTITY, "publicKey": "ed25519:cHVibGlj", "status": "online",
               "lastUpdatedAt": "2026-12-01T00:00:00Z"},
    "signatures": [{"protected": "eyJhbGciOiJFZERTQSJ9", "signature": "c2ln", "header": {"kid": "ed25519:cHVi"}}],
}  # fmt: skip


class Agent:
    """Serves `routes` (path → (status, headers, body)); counts the hits per path."""

    def __init__(self, routes: dict[str, tuple[int, dict[str, str], bytes]]) -> None:
        self.routes, self.hits = routes, {}  # type: ignore[var-annotated]
        self.release = threading.Event()
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                agent.hits[self.path] = agent.hits.get(self.path, 0) + 1
                if self.path.startswith("/hang"):
                    agent.release.wait(30)
                    return
                status, headers, body = agent.routes.get(self.path, (404, {}, b"not here"))
                self.send_response(status)
                for k, v in {"Content-Type": "application/json", "Content-Length": str(len(body)), **headers}.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def serve() -> Iterator[Any]:
    agents: list[Agent] = []

    def make(routes: dict[str, tuple[int, dict[str, str], bytes]]) -> Agent:
        agent = Agent(routes)
        agents.append(agent)
        return agent

    yield make
    for a in agents:
        a.close()


def ok(doc: Any) -> tuple[int, dict[str, str], bytes]:
    return 200, {}, json.dumps(doc).encode()


def test_the_real_sdks_agent_card_gives_the_id_under_x_zynd(serve: Any) -> None:
    agent = serve({CARD_PATH: ok(CARD)})
    assert find_entity_id(requests.Session(), agent.url) == ENTITY
    assert agent.hits == {"/.well-known/agent-card.json": 1}


def test_an_older_agent_json_with_a_top_level_id_still_works(serve: Any) -> None:
    agent = serve({OLD_PATH: ok({"id": "agent-7", "name": "old"})})
    assert find_entity_id(requests.Session(), agent.url) == "agent-7"


def test_the_health_answer_gives_the_id_when_no_card_has_one(serve: Any) -> None:
    card_without_id = {**CARD, "x-zynd": {"version": 1, "entityId": ""}}
    agent = serve({CARD_PATH: ok(card_without_id), "/health": ok({"status": "ok", "entity_id": ENTITY})})
    assert find_entity_id(requests.Session(), agent.url) == ENTITY
    assert agent.hits["/.well-known/agent.json"] == 1 and agent.hits["/health"] == 1


def test_nothing_published_gives_none(serve: Any) -> None:
    agent = serve({"/health": ok({"status": "ok"})})
    assert find_entity_id(requests.Session(), agent.url) is None


def test_a_redirect_is_not_followed_and_an_oversized_card_is_not_read(serve: Any) -> None:
    big = {**CARD, "padding": "x" * (MAX_BYTES + 1)}
    agent = serve({CARD_PATH: (302, {"Location": "/elsewhere"}, b""), OLD_PATH: ok(big), "/elsewhere": ok(CARD),
                   "/health": ok({"entity_id": "from-health"})})  # fmt: skip
    assert find_entity_id(requests.Session(), agent.url) == "from-health"
    assert "/elsewhere" not in agent.hits


def test_a_hanging_agent_costs_at_most_the_deadline(serve: Any) -> None:
    agent = serve({})
    hanging = f"{agent.url}/hang"  # every probe path lands on a handler that never answers
    started = time.monotonic()
    assert find_entity_id(requests.Session(), hanging, deadline_s=1.5) is None
    assert time.monotonic() - started < 1.5 + 1.0  # the deadline, plus scheduling slack
    assert sum(agent.hits.values()) == 2  # the card timed out, then agent.json; no time was left for /health
    assert DEADLINE_S <= 5


def test_a_row_that_reached_running_without_its_id_gets_it_from_the_steady_state_probes(
    serve: Any, tmp_path: Any
) -> None:
    settings = load_settings({"DEPLOYER_DATA_ROOT": str(tmp_path), "DEPLOYER_SKIP_CADDY": "true"})
    engine = make_engine(settings.database_url)
    upgrade(engine)
    ctx = Context(settings=settings, engine=engine, master_key=None, docker=None, caddy=None)  # type: ignore[arg-type]
    agent = serve({"/health": ok({"status": "ok"})})  # still starting up: no id anywhere yet
    port = int(agent.url.rsplit(":", 1)[1])
    fresh = make_deployment_row(engine, status="running", port=port, started_at=utcnow())
    old = make_deployment_row(engine, status="running", port=port, started_at=utcnow() - ENTITY_WINDOW * 2)

    def entity_ids() -> dict[str, Any]:
        with engine.connect() as conn:
            rows = conn.execute(
                text("select id, entity_id from deployment where id in (:a, :b)"), {"a": fresh, "b": old}
            )
            return {r.id: r.entity_id for r in rows}

    assert probe_all(ctx) == {fresh: "ok", old: "ok"}
    assert entity_ids() == {fresh: None, old: None}

    agent.routes[CARD_PATH] = ok(CARD)  # now it publishes its card
    card_reads = agent.hits.get(CARD_PATH, 0)
    probe_all(ctx)
    assert entity_ids() == {fresh: ENTITY, old: None}  # past the window nobody asks any more
    assert agent.hits[CARD_PATH] == card_reads + 1

    probe_all(ctx)
    assert agent.hits[CARD_PATH] == card_reads + 1  # found once, never asked again
