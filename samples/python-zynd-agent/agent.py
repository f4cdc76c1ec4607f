"""A sample agent that relies on the Zynd SDK preinstalled in the base image: no requirements.txt.

It imports `zyndai_agent` (as the projects `zynd agent init` makes do) and serves /health with the
standard library, reporting the SDK version it found.
"""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version

import zyndai_agent  # noqa: F401  - provided by the agent base image

PORT = int(os.environ.get("ZYND_SERVER_PORT", "5000"))
SDK = version("zyndai-agent")


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = {"status": "ok", "zyndai_agent": SDK} if self.path == "/health" else {"path": self.path}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


if __name__ == "__main__":
    print(f"zynd sdk agent (zyndai-agent {SDK}) listening on {PORT}", flush=True)
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
