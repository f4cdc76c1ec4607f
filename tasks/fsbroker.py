"""kombu's file-system transport with atomic message files, for `deployer up` (no broker server).

Stock kombu creates a message file in the queue folder, then locks it and writes it; a consumer that
lists the folder in between moves and reads an empty file, and the worker dies on the JSON error
(seen here under `deployer up`). Here a message is written in a staging folder on the same file
system and renamed into the queue folder, so a consumer only ever sees whole messages.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from time import monotonic
from typing import Any

from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

SCHEME = "deployerfs"


class Channel(filesystem.Channel):
    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        staging = Path(self.transport_options["staging_folder"])
        tmp = staging / name
        tmp.write_bytes(str_to_bytes(dumps(payload)))  # type: ignore[no-untyped-call]
        os.replace(tmp, Path(self.data_folder_out) / name)


class Transport(filesystem.Transport):
    Channel = Channel


def register() -> str:
    """Makes `deployerfs://` resolve to this transport; returns the scheme."""
    TRANSPORT_ALIASES.setdefault(SCHEME, "tasks.fsbroker:Transport")
    return SCHEME
