"""Time limits of the tasks, read by the app's configuration and by the tasks that declare them."""

from __future__ import annotations

from deployer.settings import Settings

# Hard limits per stage (seconds); the soft limit is 90% of it. The broker's visibility timeout must
# stay above the longest, or an unacked stage is handed to a second worker while still running.
STAGE_LIMITS = {
    "unpacking": 120,
    "allocating_port": 60,
    "writing_config": 60,
    "building": 1800,
    "starting": 180,
    "registering_route": 60,
    "running": 60,
}
HOUSEKEEPING_LIMIT = 60


def stage_limit(stage: str, settings: Settings) -> int:
    if stage == "health_checking":
        return settings.boot_health_timeout_ms // 1000 + 60
    return STAGE_LIMITS[stage]


def longest_limit(settings: Settings) -> int:
    """The longest any task may run: the broker must not hand a message on before this."""
    return max([*STAGE_LIMITS.values(), stage_limit("health_checking", settings)])
