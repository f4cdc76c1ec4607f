"""The one exception hierarchy. `web` translates it to HTTP in one place (status + code).

Codes are UPPER_SNAKE_CASE: they reach API clients as the `code` of `{"error": "<message>", "code": "<CODE>"}`."""

from __future__ import annotations


class DeployerError(Exception):
    """Base of every error the deployer raises on purpose; its message is safe to show a user."""

    status = 500
    code = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(DeployerError):
    code = "CONFIG_INVALID"


class InvalidUpload(DeployerError):
    status = 400
    code = "INVALID_UPLOAD"


class InvalidRequest(DeployerError):
    status = 400
    code = "INVALID_REQUEST"


class UploadTooLarge(DeployerError):
    status = 413
    code = "TOO_LARGE"


class SlugTaken(DeployerError):
    status = 409
    code = "SLUG_TAKEN"


class AtCapacity(DeployerError):
    status = 503
    code = "AT_CAPACITY"


class NotFound(DeployerError):
    status = 404
    code = "NOT_FOUND"


class Unauthorized(DeployerError):
    status = 401
    code = "UNAUTHORIZED"


class Conflict(DeployerError):
    status = 409
    code = "CONFLICT"


class Busy(DeployerError):
    status = 409
    code = "BUSY"


class Unavailable(DeployerError):
    status = 503
    code = "UNAVAILABLE"


class PortExhausted(DeployerError):
    status = 503
    code = "PORT_EXHAUSTED"


class SecretsError(DeployerError):
    code = "SECRETS"
