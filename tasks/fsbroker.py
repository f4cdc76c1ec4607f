"""kombu's file-system transport with atomic message files, for `deployer up` (no broker server).

Stock kombu creates a message file in the queue folder, then locks it and writes it; a consumer that
lists the folder in between moves and reads an empty file, and the worker dies on the JSON error
(seen here under `deployer up`). Here a message is written in a staging folder on the same file
system and renamed into the queue folder, so a consumer only ever sees whole messages.

Queues declared with an expiry (`x-expires`: Celery's event queues, `event_queue_expires`, as Flower
declares them) expire here too, which stock kombu ignores on this transport: a consumer marks its queue
alive while it polls it, and a message for a queue nobody has polled for longer than its expiry is
dropped, the queue unbound from its exchanges and its files removed. Without this, the events workers
keep sending after Flower stops would fill the queue folder for ever.

The URL has no host (`deployerfs://`), so the transport asks for none: kombu would otherwise warn "No
hostname was supplied" on every connection.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
import uuid
from pathlib import Path
from time import monotonic
from typing import Any, ClassVar

from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.transport.base import to_rabbitmq_queue_arguments
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

SCHEME = "deployerfs"
ALIVE_EVERY = 1.0  # seconds between a consumer's marks of its queue as alive


class Channel(filesystem.Channel):
    _marked: ClassVar[dict[str, float]] = {}

    def _control(self, queue: str, kind: str) -> Path:
        return Path(self.transport_options["control_folder"]) / f"{queue}.{kind}"

    def prepare_queue_arguments(self, arguments: Any, **kwargs: Any) -> Any:
        """Keeps `Queue(expires=…)` as `x-expires` (the virtual transports drop it)."""
        return to_rabbitmq_queue_arguments(arguments, expires=kwargs.get("expires"))

    def _new_queue(self, queue: Any, **kwargs: Any) -> None:
        expires = (kwargs.get("arguments") or {}).get("x-expires")
        if expires:
            self._control(queue, "expires").write_text(json.dumps({"expires_ms": float(expires)}))
            self._mark_alive(queue, force=True)
        super()._new_queue(queue, **kwargs)  # type: ignore[no-untyped-call]

    def _mark_alive(self, queue: str, *, force: bool = False) -> None:
        now = monotonic()
        if not force and now - self._marked.get(queue, 0.0) < ALIVE_EVERY:
            return
        self._marked[queue] = now
        if force or self._control(queue, "expires").exists():
            self._control(queue, "alive").touch()

    def _expired(self, queue: str) -> bool:
        try:
            expires_ms = json.loads(self._control(queue, "expires").read_text())["expires_ms"]
            alive = self._control(queue, "alive").stat().st_mtime
        except (OSError, ValueError, KeyError):
            return False
        return bool((time.time() - alive) * 1000 > float(expires_ms))

    def _forget(self, queue: str) -> None:
        """Unbind the queue from every exchange, then remove its messages and control files."""
        control = Path(self.transport_options["control_folder"])
        for table in control.glob("*.exchange"):
            with table.open("rb+", buffering=0) as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                rows = json.loads(fh.read() or b"[]")
                kept = [r for r in rows if r[2] != queue]
                if len(kept) != len(rows):
                    fh.seek(0)
                    fh.write(json.dumps(kept).encode())
                    fh.truncate()
        for path in Path(self.data_folder_out).glob(f"*.{queue}.msg"):
            with contextlib.suppress(OSError):
                path.unlink()
        for kind in ("alive", "expires"):
            with contextlib.suppress(OSError):
                self._control(queue, kind).unlink()

    def _get(self, queue: Any, timeout: Any = None) -> Any:
        self._mark_alive(queue)
        return super()._get(queue)  # type: ignore[no-untyped-call]

    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        if self._expired(queue):
            self._forget(queue)
            return
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        staging = Path(self.transport_options["staging_folder"])
        tmp = staging / name
        tmp.write_bytes(str_to_bytes(dumps(payload)))  # type: ignore[no-untyped-call]
        os.replace(tmp, Path(self.data_folder_out) / name)


class Transport(filesystem.Transport):
    Channel = Channel

    @property
    def default_connection_params(self) -> dict[str, Any]:
        return {}  # no host to default to: see the module's docstring


def register() -> str:
    """Makes `deployerfs://` resolve to this transport; returns the scheme."""
    TRANSPORT_ALIASES.setdefault(SCHEME, "tasks.fsbroker:Transport")
    return SCHEME
