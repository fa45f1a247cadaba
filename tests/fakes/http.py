"""A real HTTP server on loopback that records requests and answers from a script.

Fakes of external services (PostHog today; Shopify, Klaviyo, Slack… later) build on it so the
real client libraries are exercised over a socket.
"""

import gzip
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict
    body: bytes

    def json(self):
        raw = self.body
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            raw = gzip.decompress(raw)
        return json.loads(raw or b"null")


@dataclass
class FakeServer:
    """Start with `with FakeServer(handler) as server:`; `server.url` is its base URL."""

    respond: callable = None  # (RecordedRequest) -> (status, dict | bytes, headers)
    requests: list = field(default_factory=list)

    def __post_init__(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                recorded = RecordedRequest(self.command, self.path, dict(self.headers), self.rfile.read(length))
                fake.requests.append(recorded)
                status, body, headers = (fake.respond or (lambda r: (200, {"status": 1}, {})))(recorded)
                payload = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self):
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
