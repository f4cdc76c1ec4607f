"""Periodic work (docs/architecture.md#periodic-work), as plain data naming tasks by string (beat reads nothing
else)."""

from __future__ import annotations

from typing import Any

from deployer.settings import Settings


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    # Safety nets run every second; they expire rather than pile up behind busy workers.
    fast = {"expires": 5}
    return {
        "drain-queue": {"task": "deployer.drain_queue", "schedule": 1.0, "options": fast},
        "reconcile-stops": {"task": "deployer.reconcile_stops", "schedule": 1.0, "options": fast},
        "probe-health": {
            "task": "deployer.probe_health",
            "schedule": float(settings.health_interval_sec),
            "options": {"expires": settings.health_interval_sec},
        },
        "sample-metrics": {
            "task": "deployer.sample_metrics",
            "schedule": float(settings.metrics_interval_sec),
            "options": {"expires": settings.metrics_interval_sec},
        },
        "retention": {"task": "deployer.retention", "schedule": settings.retention_interval_min * 60.0},
        "reconcile-runtime": {"task": "deployer.reconcile_runtime", "schedule": 30.0, "options": {"expires": 25}},
        "trace-prune": {"task": "deployer.trace_prune", "schedule": 3600.0},
    }
