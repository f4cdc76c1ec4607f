"""The error hierarchy: codes spelled one way, no HTTP in the domain, one status table in web."""

from __future__ import annotations

import re

import pytest
import requests
from flask import Flask

from deployer import errors
from deployer.errors import (
    AtCapacity,
    BootFailed,
    BuildFailed,
    Busy,
    CaddyError,
    CaddyUnreachable,
    ConfigError,
    Conflict,
    DeployerError,
    DockerUnreachable,
    InvalidRequest,
    InvalidUpload,
    NotFound,
    PortExhausted,
    SecretsError,
    SlugTaken,
    TransientError,
    Unauthorized,
    Unavailable,
    UploadTooLarge,
)
from deployer.lifecycle.containers import docker_reachable
from web.errors import CsrfRejected, init_app, status_of

# The statuses the API has always answered with; a change here is a change of the API.
API_STATUS: dict[type[DeployerError], int] = {
    DeployerError: 500,
    ConfigError: 500,
    InvalidUpload: 400,
    InvalidRequest: 400,
    UploadTooLarge: 413,
    SlugTaken: 409,
    AtCapacity: 503,
    NotFound: 404,
    Unauthorized: 401,
    Conflict: 409,
    Busy: 409,
    Unavailable: 503,
    PortExhausted: 503,
    SecretsError: 500,
    BuildFailed: 500,
    BootFailed: 500,
    CaddyError: 500,
    CaddyUnreachable: 500,
    TransientError: 500,
    DockerUnreachable: 500,
    CsrfRejected: 403,
}


def domain_errors() -> list[type[DeployerError]]:
    found = [v for v in vars(errors).values() if isinstance(v, type) and issubclass(v, DeployerError)]
    return found


def test_every_domain_error_is_in_the_one_hierarchy_and_pinned_here() -> None:
    assert set(domain_errors()) == set(API_STATUS) - {CsrfRejected}


def test_every_error_code_is_upper_snake_case() -> None:
    for cls in [*domain_errors(), CsrfRejected]:
        assert re.fullmatch(r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)*", cls.code), cls


def test_the_domain_errors_carry_no_http_status() -> None:
    for cls in domain_errors():
        assert not hasattr(cls, "status"), cls


@pytest.mark.parametrize("cls", list(API_STATUS), ids=lambda cls: cls.__name__)
def test_each_error_answers_with_the_status_and_body_the_api_always_gave(cls: type[DeployerError]) -> None:
    assert status_of(cls("x")) == API_STATUS[cls]
    app = Flask(__name__)
    init_app(app)

    @app.get("/api/boom")
    def boom() -> str:
        raise cls("what went wrong")

    resp = app.test_client().get("/api/boom")
    assert resp.status_code == API_STATUS[cls]
    assert resp.get_json() == {"error": "what went wrong", "code": cls.code}


def test_a_lost_docker_connection_is_transient_and_says_so() -> None:
    unreachable = pytest.raises(DockerUnreachable, match="Docker API unreachable: ConnectionError")
    with unreachable as caught, docker_reachable():
        raise requests.ConnectionError("socket gone")
    assert isinstance(caught.value, TransientError)


def test_an_unreachable_caddy_is_a_caddy_error_that_may_pass() -> None:
    assert issubclass(CaddyUnreachable, CaddyError)
    assert issubclass(CaddyUnreachable, TransientError)
    assert CaddyUnreachable.code == CaddyError.code
