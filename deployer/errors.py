"""The one exception hierarchy. `web` translates it to HTTP in one place (status + code)."""

from __future__ import annotations


class DeployerError(Exception):
    """Base of every error the deployer raises on purpose; its message is safe to show a user."""

    status = 500
    code = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(DeployerError):
    code = "config_invalid"


class InvalidUpload(DeployerError):
    status = 400
    code = "invalid_upload"


class InvalidRequest(DeployerError):
    status = 400
    code = "invalid_request"


class UploadTooLarge(DeployerError):
    status = 413
    code = "too_large"


class SlugTaken(DeployerError):
    status = 409
    code = "slug_taken"


class AtCapacity(DeployerError):
    status = 503
    code = "at_capacity"


class NotFound(DeployerError):
    status = 404
    code = "not_found"


class Unauthorized(DeployerError):
    status = 401
    code = "unauthorized"


class Conflict(DeployerError):
    status = 409
    code = "conflict"


class Busy(DeployerError):
    status = 409
    code = "busy"


class Unavailable(DeployerError):
    status = 503
    code = "unavailable"


class PortExhausted(DeployerError):
    status = 503
    code = "PORT_EXHAUSTED"


class SecretsError(DeployerError):
    code = "secrets"
