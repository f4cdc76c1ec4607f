from __future__ import annotations

from pathlib import Path

import pytest

from deployer.errors import ConfigError
from deployer.localkeys import ensure_local_value, installation_id, private_data_root, session_key
from deployer.settings import env_example, env_fields, load_settings


def test_defaults_serve_a_single_host_with_embedded_stores(tmp_path: Path) -> None:
    s = load_settings({"DEPLOYER_DATA_ROOT": str(tmp_path)})
    assert s.database_url == f"sqlite:///{tmp_path / 'deployer.sqlite'}"
    assert s.celery_broker_url == "filesystem://"
    assert s.redis_url == ""
    assert s.age_identity_path == tmp_path / "age.key"
    assert (s.port_min, s.port_max, s.max_active) == (13000, 14000, 50)
    assert (s.container_mem_mb, s.container_cpu_millis, s.container_tmpfs_mb) == (1536, 1000, 512)
    assert s.boot_health_timeout_ms == 120000 and s.restart_policy == "no" and s.skip_caddy is False


def test_values_are_read_and_typed_from_the_environment(tmp_path: Path) -> None:
    s = load_settings(
        {
            "DEPLOYER_DATA_ROOT": str(tmp_path),
            "DEPLOYER_PORT_MIN": "20000",
            "DEPLOYER_PORT_MAX": "20010",
            "DEPLOYER_SKIP_CADDY": "yes",
            "DEPLOYER_RESTART_POLICY": "on-failure:3",
            "DATABASE_URL": "postgresql+psycopg://u:p@db/x",
        }
    )
    assert (s.port_min, s.port_max, s.skip_caddy, s.restart_policy) == (20000, 20010, True, "on-failure:3")
    assert s.database_url == "postgresql+psycopg://u:p@db/x"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DEPLOYER_PORT_MIN": "abc"}, "DEPLOYER_PORT_MIN"),
        ({"DEPLOYER_MAX_ACTIVE": "0"}, "DEPLOYER_MAX_ACTIVE"),
        ({"DEPLOYER_SKIP_CADDY": "maybe"}, "DEPLOYER_SKIP_CADDY"),
        ({"DEPLOYER_PORT_MIN": "14001"}, "DEPLOYER_PORT_MIN"),
        ({"DEPLOYER_RESTART_POLICY": "always"}, "DEPLOYER_RESTART_POLICY"),
        ({"DATABASE_URL": "postgresql://u@h/d"}, "DATABASE_URL"),
        ({"DEPLOYER_SECRET_KEY": "too-short"}, "DEPLOYER_SECRET_KEY"),
        ({"DEPLOYER_INSTALLATION_ID": "Not An Id"}, "DEPLOYER_INSTALLATION_ID"),
        ({"DEPLOYER_WILDCARD_DOMAIN": "bad domain}"}, "DEPLOYER_WILDCARD_DOMAIN"),
        ({"TRACE_PROXY": "true"}, "TRACE_PROXY_SECRET"),
    ],
)
def test_a_bad_value_fails_with_a_message_naming_the_variable(
    tmp_path: Path, env: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings({"DEPLOYER_DATA_ROOT": str(tmp_path), **env})
    assert err.value.message.startswith(named)


def test_production_accepts_a_real_secret_key(tmp_path: Path) -> None:
    s = load_settings({"DEPLOYER_DATA_ROOT": str(tmp_path), "DEPLOYER_ENV": "production",
                       "DEPLOYER_SECRET_KEY": "x" * 32})  # fmt: skip
    assert s.env == "production" and session_key(s) == "x" * 32


def test_without_a_secret_key_each_installation_makes_its_own_once_and_keeps_it_private(tmp_path: Path) -> None:
    s = load_settings({"DEPLOYER_DATA_ROOT": str(tmp_path / "a")})
    assert s.env == "production"  # the default: nothing insecure is assumed
    key = session_key(s)
    assert len(key) == 64 and session_key(s) == key
    assert (tmp_path / "a" / "session.key").stat().st_mode & 0o777 == 0o600
    other = load_settings({"DEPLOYER_DATA_ROOT": str(tmp_path / "b")})
    assert session_key(other) != key
    assert installation_id(s) != installation_id(other) and installation_id(s) == installation_id(s)


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    """Every racer writes its own candidate, one link wins, and all read the winner."""
    import concurrent.futures

    path = tmp_path / "data" / "session.key"
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        keys = set(pool.map(lambda i: ensure_local_value(path, lambda: f"candidate-{i}"), range(64)))
    assert len(keys) == 1 and path.read_text().strip() in keys
    assert [p.name for p in path.parent.iterdir()] == ["session.key"]  # no candidate left behind


def test_env_example_in_the_repo_lists_every_variable_with_its_default() -> None:
    committed = (Path(__file__).parents[2] / ".env.example").read_text()
    assert committed == env_example(), "regenerate with: python -m deployer.settings > .env.example"
    for f in env_fields():
        assert f"\n{f.metadata['env']}=" in committed


def test_the_data_root_is_made_private_and_a_loose_one_is_narrowed(tmp_path: Path) -> None:
    s = load_settings({"DEPLOYER_DATA_ROOT": str(tmp_path / "root")})
    assert private_data_root(s).stat().st_mode & 0o777 == 0o700
    (tmp_path / "root").chmod(0o755)
    assert private_data_root(s).stat().st_mode & 0o777 == 0o700
