"""The security tests attack a whole real deployer: the integration stack, on its own ports."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.integration.conftest import base_images, caddy, docker_client, make_stack_env, stack  # noqa: F401
from tests.support.stack import Caddy


@pytest.fixture(scope="session")
def stack_env(
    tmp_path_factory: pytest.TempPathFactory,
    new_pg_database: Callable[[], str],
    redis_url: str,
    caddy: Caddy,  # noqa: F811 - the fixture imported above, by name
) -> dict[str, str]:
    return make_stack_env(tmp_path_factory, new_pg_database, redis_url, caddy, ports_from=18000)
