"""The one exception hierarchy. Each class names a kind of trouble and carries a stable `code`; what
that means over HTTP (the status) is the web app's business, decided in one table there.

Codes are UPPER_SNAKE_CASE, spelled here and nowhere else: they reach API clients as the `code` of
`{"error": "<message>", "code": "<CODE>"}`."""

from __future__ import annotations


class DeployerError(Exception):
    """Base of every error the deployer raises on purpose; its message is safe to show a user."""

    code = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(DeployerError):
    code = "CONFIG_INVALID"


class InvalidUpload(DeployerError):
    code = "INVALID_UPLOAD"


class InvalidRequest(DeployerError):
    code = "INVALID_REQUEST"


class UploadTooLarge(DeployerError):
    code = "TOO_LARGE"


class SlugTaken(DeployerError):
    code = "SLUG_TAKEN"


class AtCapacity(DeployerError):
    code = "AT_CAPACITY"


class NotFound(DeployerError):
    code = "NOT_FOUND"


class Unauthorized(DeployerError):
    code = "UNAUTHORIZED"


class Conflict(DeployerError):
    code = "CONFLICT"


class Busy(DeployerError):
    code = "BUSY"


class Unavailable(DeployerError):
    code = "UNAVAILABLE"


class PortExhausted(DeployerError):
    code = "PORT_EXHAUSTED"


class SecretsError(DeployerError):
    code = "SECRETS"


class BuildFailed(DeployerError):
    """The image build failed: the build's own error, or the Docker daemon's refusal."""

    code = "BUILD_FAILED"


class BootFailed(DeployerError):
    """The container would not come up healthy (exited, OOM-killed, or silent past the deadline)."""

    code = "BOOT_FAILED"


class CaddyError(DeployerError):
    """Caddy's admin API refused a change, or was not there to ask."""

    code = "CADDY"


class TransientError(DeployerError):
    """Trouble that may pass by itself (a service restarting, a socket not there for a moment): the
    caller may try the same thing again. The adapters to outside services raise it; whoever drives
    an idempotent step decides whether to retry on it."""

    code = "TRANSIENT"


class CaddyUnreachable(CaddyError, TransientError):
    """No connection to Caddy's admin API (it restarts its listener on some config loads)."""

    code = "CADDY"


class DockerUnreachable(TransientError):
    """No connection to the Docker daemon's API, or it dropped one mid-call."""

    code = "DOCKER_UNREACHABLE"
