"""Periodic work of DESIGN §6, as plain data naming tasks by string.

Filled in as the lifecycle and supervision tasks land; beat reads it and nothing else.
"""

from __future__ import annotations

from typing import Any

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {}
