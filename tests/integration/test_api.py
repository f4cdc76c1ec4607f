"""The API over real HTTP, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from sqlalchemy import Engine, func, select

from deployer.bundles.secrets import ensure_master_key, read_encrypted
from deployer.settings import Settings, load_settings
from deployer.store import tokens
from deployer.store.models import Deployment
from deployer.store.tables import DEPLOYMENT as _dep
from tests.support.http import error_of
from tests.support.live import LiveServer
from tests.support.stack import Api
from tests.support.zips import KEYPAIR, PRIVATE_KEY, agent_zip, make_zip, zip_folder

SAMPLES = Path(__file__).parents[2] / "samples"


@pytest.fixture
def kicks() -> list[str]:
    return []


@pytest.fixture
def api(make_live_server: Callable[..., LiveServer], settings: Settings, engine: Engine, kicks: list[str]) -> Api:
    server = make_live_server(settings, kick=kicks.append)
    _, token = tokens.create_token(engine, "tests")
    return Api(server.url, token)


def rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(_dep)).scalar_one())


def stored_files(settings: Settings) -> list[Path]:
    return [p for d in (settings.bundles_dir, settings.keys_dir) if d.exists() for p in d.iterdir()]


def upload_scratch_dirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("deployer-upload-*")}


def test_health_needs_no_token_and_reports_the_database(api: Api) -> None:
    resp = requests.get(f"{api.url}/api/health", timeout=10)
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok", "db": "ok", "redis": "disabled"}


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/deployments"), ("POST", "/api/deployments"), ("GET", "/api/deployments/x"),
     ("POST", "/api/deployments/x/stop"), ("DELETE", "/api/deployments/x"), ("GET", "/api/deployments/x/logs")],
)  # fmt: skip
@pytest.mark.parametrize("header", [None, "Bearer", "Bearer dpl_wrong", "Basic abc", "dpl_no_scheme"])
def test_every_api_route_but_health_refuses_a_missing_or_bad_token(
    api: Api, method: str, path: str, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}
    resp = requests.request(method, f"{api.url}{path}", headers=headers, timeout=10)
    error_of(resp, 401, "UNAUTHORIZED")


def test_a_revoked_token_is_refused(api: Api, engine: Engine) -> None:
    tokens.revoke_token(engine, "tests")
    error_of(api.get("/api/deployments"), 401, "UNAUTHORIZED")


def test_uploading_a_zynd_python_agent_queues_it_with_encrypted_files(
    api: Api, engine: Engine, settings: Settings, kicks: list[str]
) -> None:
    bundle = zip_folder(SAMPLES / "python-agent")
    keypair = (SAMPLES / "python-agent" / "keypair.json").read_bytes()
    resp = api.upload(bundle, keypair)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert set(body) == {"id", "slug", "status", "runtime", "image", "url"}
    assert body["status"] == "queued" and body["runtime"] == "python" and body["image"] is None
    assert body["slug"].startswith("echo-agent-") and len(body["slug"]) == len("echo-agent-") + 6
    assert body["url"] == f"https://{body['slug']}.apps.test"
    assert kicks == ["drain_queue"]

    row = api.get(f"/api/deployments/{body['id']}").json()
    assert (row["status"], row["entity_type"], row["name"]) == ("queued", "agent", "Echo Agent")
    assert row["public_key_b64"] == json.loads(keypair)["public_key"]

    key = ensure_master_key(settings.age_identity_path)
    files = sorted(stored_files(settings), key=lambda p: p.name)
    assert [p.name for p in files] == [f"{body['id']}.keypair.json.age", f"{body['id']}.zip.age"]
    for p in files:
        assert p.read_bytes().startswith(b"age-encryption.org/v1\n")
    assert read_encrypted(key, settings.bundles_dir / f"{body['id']}.zip.age") == bundle
    assert read_encrypted(key, settings.keys_dir / f"{body['id']}.keypair.json.age") == keypair


def test_a_node_agent_and_a_plain_python_service_are_accepted(api: Api) -> None:
    node = api.upload(zip_folder(SAMPLES / "node-agent"), (SAMPLES / "node-agent" / "keypair.json").read_bytes())
    assert node.status_code == 201 and node.json()["runtime"] == "node"
    plain = api.upload(zip_folder(SAMPLES / "python-service"), keypair=None, name="Hello Service")
    assert plain.status_code == 201, plain.text
    assert plain.json()["runtime"] == "python" and plain.json()["slug"].startswith("hello-service-")


def test_the_private_key_never_appears_in_any_response(api: Api) -> None:
    created = api.upload(agent_zip(), KEYPAIR).json()
    bad = api.upload(agent_zip(), json.dumps({"public_key": "cHVi", "private_key": PRIVATE_KEY + "$"}).encode())
    responses = [
        json.dumps(created), bad.text,
        api.get("/api/deployments").text,
        api.get(f"/api/deployments/{created['id']}").text,
        api.get(f"/api/deployments/{created['id']}/logs").text,
    ]  # fmt: skip
    assert PRIVATE_KEY not in error_of(bad, 400, "INVALID_UPLOAD")
    for text in responses:
        assert PRIVATE_KEY not in text


HOSTILE: list[tuple[str, Callable[[], bytes], bytes | None, dict[str, str], int, str]] = [
    ("not a zip", lambda: b"PK-not-really", KEYPAIR, {}, 400, "not a valid zip"),
    ("absolute path", lambda: make_zip({"agent.config.json": '{"name":"abc"}', "/etc/cron.d/x": "x"}), KEYPAIR, {},
     400, "absolute path"),
    ("dot-dot", lambda: make_zip({"agent.config.json": '{"name":"abc"}', "../../x.py": "x"}), KEYPAIR, {}, 400, "'..'"),
    ("symlink", lambda: make_zip({"agent.config.json": '{"name":"abc"}', "agent.py": "", "l": "/etc/passwd"},
     modes={"l": 0o120777}), KEYPAIR, {}, 400, "symbolic link"),
    ("device", lambda: make_zip({"agent.config.json": '{"name":"abc"}', "agent.py": "", "d": ""},
     modes={"d": 0o020644}), KEYPAIR, {}, 400, "special file"),
    ("developer.json", lambda: agent_zip(**{"developer.json": "{}"}), KEYPAIR, {}, 400, "developer credentials"),
    ("developer key in .env", lambda: agent_zip(**{".env": "ZYND_DEVELOPER_SEED=abc"}), KEYPAIR, {}, 400,
     "ZYND_DEVELOPER_SEED"),
    ("npm token", lambda: agent_zip(**{".npmrc": "//r/:_authToken=x"}), KEYPAIR, {}, 400, "auth token"),
    ("workspace spec", lambda: make_zip({"agent.config.json": '{"name":"abc"}', "agent.js": "",
     "package.json": '{"dependencies":{"a":"workspace:*"}}'}), KEYPAIR, {}, 400, "workspace:"),
    ("keypair in the project", lambda: agent_zip(**{"keypair.json": KEYPAIR}), KEYPAIR, {}, 400,
     "keypair.json is a keypair inside the project; the keypair belongs in the keypair.json upload field"),
    ("nested keypair, odd case", lambda: agent_zip(**{"keys/Agent/KeyPair.Json": KEYPAIR}), KEYPAIR, {}, 400,
     "keys/Agent/KeyPair.Json is a keypair inside the project"),
    ("keypair only in the project", lambda: agent_zip(**{"KEYPAIR.JSON": KEYPAIR}), None, {}, 400,
     "upload field, not in the project"),
    ("json with a private_key", lambda: agent_zip(**{".agent/config.json": '{"private_key": "' + PRIVATE_KEY + '"}'}),
     KEYPAIR, {}, 400, ".agent/config.json holds a private_key; the keypair belongs in the keypair.json upload field"),
    ("no keypair", lambda: agent_zip(), None, {}, 400, "keypair.json is required"),
    ("bad keypair", lambda: agent_zip(), b'{"public_key": 1}', {}, 400, "public_key"),
    ("both configs", lambda: agent_zip(**{"service.config.json": '{"name":"x"}'}), KEYPAIR, {}, 400,
     "keep exactly one"),
    ("nameless config", lambda: make_zip({"agent.config.json": "{}", "agent.py": ""}), KEYPAIR, {}, 400,
     "needs a string name"),
    ("short name", lambda: agent_zip(name="!!"), KEYPAIR, {}, 400, "at least 3"),
    ("ambiguous", lambda: make_zip({"requirements.txt": "", "package.json": "{}", "service.py": ""}), None,
     {"name": "amb"}, 400, "Ambiguous upload"),
    ("undetectable", lambda: make_zip({"README.md": "hi"}), None, {"name": "readme"}, 400, "Could not detect"),
    ("env not json", lambda: agent_zip(), KEYPAIR, {"env": "A=1"}, 400, "env must be a JSON object"),
    ("env developer key", lambda: agent_zip(), KEYPAIR, {"env": '{"ZYND_DEVELOPER_PRIVATE_KEY": "x"}'}, 400,
     "developer keys"),
    ("env bad name", lambda: agent_zip(), KEYPAIR, {"env": '{"1BAD": "x"}'}, 400, "not a valid variable name"),
    ("bad runtime", lambda: agent_zip(), KEYPAIR, {"runtime": "ruby"}, 400, "runtime must be one of"),
    ("zip bomb", lambda: agent_zip(**{"bomb.bin": b"\0" * (3 * 1024 * 1024)}), KEYPAIR, {}, 413, "limit"),
    ("too many requirements", lambda: agent_zip(**{"requirements.txt": "\n".join(f"p{i}" for i in range(201))}),
     KEYPAIR, {}, 400, "201 requirement lines"),
]  # fmt: skip


@pytest.fixture
def small_limits(settings_env: dict[str, str]) -> Settings:
    return load_settings({**settings_env, "DEPLOYER_MAX_UNPACKED_MB": "2", "DEPLOYER_MAX_UPLOAD_MB": "1"})


@pytest.mark.parametrize(("case", "bundle", "keypair", "form", "status", "problem"), HOSTILE,
                         ids=[h[0] for h in HOSTILE])  # fmt: skip
def test_a_hostile_upload_is_refused_clearly_and_leaves_nothing_behind(
    make_live_server: Callable[..., LiveServer], small_limits: Settings, engine: Engine,
    case: str, bundle: Callable[[], bytes], keypair: bytes | None, form: dict[str, str], status: int, problem: str,
) -> None:  # fmt: skip
    server = make_live_server(small_limits)
    api = Api(server.url, tokens.create_token(engine, "t")[1])
    scratch_before = upload_scratch_dirs()
    resp = api.upload(bundle(), keypair, **form)
    assert problem in error_of(resp, status, "INVALID_UPLOAD" if status == 400 else "TOO_LARGE")
    assert PRIVATE_KEY not in resp.text
    assert rows(engine) == 0
    assert stored_files(small_limits) == []
    assert upload_scratch_dirs() == scratch_before


def test_a_missing_bundle_field_is_a_400(api: Api) -> None:
    resp = api.s.post(f"{api.url}/api/deployments", data={"name": "x"}, timeout=10)
    assert "project.zip is required" in error_of(resp, 400, "INVALID_UPLOAD")


def test_a_zip_over_the_upload_limit_is_a_413(
    make_live_server: Callable[..., LiveServer], small_limits: Settings, engine: Engine
) -> None:
    api = Api(make_live_server(small_limits).url, tokens.create_token(engine, "t")[1])
    import os

    big = make_zip({"agent.config.json": '{"name":"abc"}', "agent.py": "", "blob": os.urandom(1_200_000)})
    resp = api.upload(big)
    error_of(resp, 413, "TOO_LARGE")
    error_of(api.upload(os.urandom(6 * 1024 * 1024)), 413, "TOO_LARGE")
    assert rows(engine) == 0 and stored_files(small_limits) == []


def test_a_taken_slug_is_a_409_and_keeps_no_files(
    make_live_server: Callable[..., LiveServer], settings: Settings, engine: Engine
) -> None:
    server = make_live_server(settings, slug_suffix=lambda _n: "abcdef")
    api = Api(server.url, tokens.create_token(engine, "t")[1])
    assert api.upload(agent_zip("Same Name")).status_code == 201
    resp = api.upload(agent_zip("Same Name"))
    assert "same-name-abcdef" in error_of(resp, 409, "SLUG_TAKEN")
    assert rows(engine) == 1 and len(stored_files(settings)) == 2


def test_uploads_past_capacity_are_a_503(
    make_live_server: Callable[..., LiveServer], settings_env: dict[str, str], engine: Engine
) -> None:
    settings = load_settings({**settings_env, "DEPLOYER_MAX_ACTIVE": "2"})
    api = Api(make_live_server(settings).url, tokens.create_token(engine, "t")[1])
    first = api.upload(agent_zip("one"))
    assert api.upload(agent_zip("two")).status_code == 201
    resp = api.upload(agent_zip("three"))
    assert "2 of 2" in error_of(resp, 503, "AT_CAPACITY")
    assert rows(engine) == 2 and len(stored_files(settings)) == 4
    api.post(f"/api/deployments/{first.json()['id']}/stop")
    assert api.upload(agent_zip("three")).status_code == 201


def test_listing_pages_and_filters_newest_first(api: Api) -> None:
    ids = [api.upload(agent_zip(f"agent {i}")).json()["id"] for i in range(5)]
    api.post(f"/api/deployments/{ids[0]}/stop")
    page = api.get("/api/deployments", limit=2, offset=1).json()
    assert page["total"] == 5 and [d["id"] for d in page["deployments"]] == [ids[3], ids[2]]
    stopped = api.get("/api/deployments", status="stopped").json()
    assert stopped["total"] == 1 and stopped["deployments"][0]["id"] == ids[0]
    for params, problem in [({"status": "bogus"}, "status must be one of"), ({"limit": 0}, "limit must be"),
                            ({"limit": "x"}, "limit must be an integer"), ({"offset": -1}, "offset")]:  # fmt: skip
        resp = api.get("/api/deployments", **params)
        assert problem in error_of(resp, 400, "INVALID_REQUEST")


def test_a_deployment_view_has_no_paths_env_values_or_secrets(api: Api) -> None:
    created = api.upload(agent_zip(), env=json.dumps({"OPENAI_API_KEY": "sk-very-secret"})).json()
    view = api.get(f"/api/deployments/{created['id']}")
    assert view.json()["env_keys"] == ["OPENAI_API_KEY"]
    assert "sk-very-secret" not in view.text and ".age" not in view.text and "/data" not in view.text


def test_env_values_are_stored_encrypted_and_open_with_the_master_key(api: Api, engine: Engine,
                                                                      settings: Settings) -> None:  # fmt: skip
    from deployer.bundles.secrets import load_master_key, open_env

    created = api.upload(agent_zip(), env=json.dumps({"OPENAI_API_KEY": "sk-very-secret", "MODE": "x"})).json()
    table = Deployment.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        stored = conn.execute(select(table.c.env).where(table.c.id == created["id"])).scalar_one()
    assert set(stored) == {"OPENAI_API_KEY", "MODE"} and "sk-very-secret" not in json.dumps(stored)
    key = load_master_key(settings.age_identity_path)
    assert open_env(key, stored) == {"OPENAI_API_KEY": "sk-very-secret", "MODE": "x"}


def test_unknown_deployments_are_404(api: Api) -> None:
    for resp in (api.get("/api/deployments/nope"), api.post("/api/deployments/nope/stop"),
                 api.get("/api/deployments/nope/logs")):  # fmt: skip
        error_of(resp, 404, "NOT_FOUND")


def test_stop_and_delete_mark_stopped_idempotently_and_log_it(api: Api, kicks: list[str]) -> None:
    dep = api.upload(agent_zip()).json()["id"]
    first = api.post(f"/api/deployments/{dep}/stop")
    assert first.status_code == 202 and first.json() == {"id": dep, "status": "stopped"}
    again = api.s.delete(f"{api.url}/api/deployments/{dep}", timeout=10)
    assert again.status_code == 202 and again.json()["status"] == "stopped"
    assert kicks.count("reconcile_stops") == 2
    row = api.get(f"/api/deployments/{dep}").json()
    assert row["status"] == "stopped" and row["stopped_at"]
    lines = api.get(f"/api/deployments/{dep}/logs").json()["lines"]
    assert [ln["line_no"] for ln in lines] == [1, 2]
    assert lines[1]["text"] == "status: stopped — stop requested" and lines[1]["stream"] == "system"
    assert api.get(f"/api/deployments/{dep}/logs", after=1).json()["lines"][0]["line_no"] == 2
