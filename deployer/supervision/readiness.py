"""Whether the web process can reach what it depends on (for `GET /api/health`)."""

from __future__ import annotations

from sqlalchemy import Engine, text


def check(engine: Engine, redis_url: str = "") -> dict[str, str]:
    report = {"db": "ok", "redis": "disabled"}
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means "not ready"; the kind goes into the report
        report["db"] = f"error: {type(exc).__name__}"
    if redis_url:
        import redis

        try:
            redis.Redis.from_url(redis_url, socket_timeout=1, socket_connect_timeout=1).ping()
            report["redis"] = "ok"
        except redis.RedisError as exc:
            report["redis"] = f"error: {type(exc).__name__}"
    return report


def is_ready(report: dict[str, str]) -> bool:
    return all(v in ("ok", "disabled") for v in report.values())
