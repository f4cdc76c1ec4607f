"""A Zynd-style sample agent: standard library only, answers /health and echoes POSTs."""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ.get("ZYND_SERVER_PORT", "5000"))
NAME = "echo-agent"


class Handler(BaseHTTPRequestHandler):
    def _send(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/health":
            self._send(200, {"status": "ok"})
        elif self.path in ("/.well-known/agent-card.json", "/.well-known/agent.json"):
            self._send(200, {"name": NAME, "id": os.environ.get("ZYND_AGENT_ID", NAME)})
        else:
            self._send(200, {"agent": NAME, "path": self.path})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        print(f"received {len(body)} bytes on {self.path}", flush=True)
        self._send(200, {"echo": body})

    def log_message(self, fmt, *args):
        print(fmt % args, file=sys.stderr, flush=True)


if __name__ == "__main__":
    print(f"{NAME} listening on {PORT}", flush=True)
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
