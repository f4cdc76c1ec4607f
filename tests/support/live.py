"""The real web app on a loopback port, for tests and benchmarks."""

from __future__ import annotations

import logging
import threading
from typing import Any

from werkzeug.serving import make_server


class LiveServer:
    """A WSGI app on a loopback port, served by werkzeug's threaded server on a background thread."""

    def __init__(self, app: Any) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.app = app
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)
        self._server.server_close()
