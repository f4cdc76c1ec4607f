"""Running the trace runtime: `deployer trace serve` or, from the slim install, `python -m traces serve`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from deployer.settings import Settings, load_settings
from traces.store import TraceStore, now_ms


def serve(settings: Settings, *, host: str, port: int, threads: int = 32) -> None:
    from gunicorn.app.base import BaseApplication

    from traces.runtime.app import create_trace_app

    class App(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            options = {"bind": f"{host}:{port}", "workers": 1, "worker_class": "gthread", "threads": threads,
                       "timeout": 60, "accesslog": "-"}  # fmt: skip
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return create_trace_app(settings)

    App().run()


def prune(settings: Settings, *, hours: int | None = None, keep_exceptions: bool = False) -> int:
    """Entries older than `hours` (default TRACE_PRUNE_HOURS): cut-off = now - hours."""
    cutoff = now_ms() - (hours or settings.trace_prune_hours) * 3_600_000
    return TraceStore(settings.trace_db_path).prune(cutoff, keep_exceptions=keep_exceptions)


def clear(settings: Settings) -> int:
    return TraceStore(settings.trace_db_path).clear()


def status(settings: Settings) -> dict[str, Any]:
    store = TraceStore(settings.trace_db_path)
    size = settings.trace_db_path.stat().st_size if settings.trace_db_path.exists() else 0
    return {"database": str(settings.trace_db_path), "bytes": size, **store.stats(), "monitoring": store.monitoring()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m traces", description="The deployer's trace runtime")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=7778)
    p = sub.add_parser("prune")
    p.add_argument("--hours", type=int)
    p.add_argument("--keep-exceptions", action="store_true")
    sub.add_parser("clear")
    sub.add_parser("status")
    args = parser.parse_args(argv)
    settings = load_settings()
    if args.command == "serve":
        serve(settings, host=args.host, port=args.port)
    elif args.command == "prune":
        print(f"pruned {prune(settings, hours=args.hours, keep_exceptions=args.keep_exceptions)} entries")
    elif args.command == "clear":
        print(f"cleared {clear(settings)} entries")
    else:
        print(json.dumps(status(settings), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
