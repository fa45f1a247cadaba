"""Fake Klaviyo, Postscript and Slack on loopback, talked to by the real client libraries.

Each fake answers from a script: a list of (status, body, headers) used in order, then the
default success. Klaviyo keeps events by `unique_id` as Klaviyo does, so a resend of the same
notification is recorded once.
"""

import threading
import time

from tests.fakes.http import FakeServer


class ScriptedFake:
    default = (200, {}, {})

    def __init__(self):
        self.lock = threading.Lock()
        self.script: list = []
        self.requests: list = []
        self.times: list[float] = []  # time.monotonic() of each request
        self.server = FakeServer(respond=self._respond)

    @property
    def url(self) -> str:
        return self.server.url

    def answer(self, *responses):
        """Queue answers for the next calls: (status, body, headers) or a bare status."""
        with self.lock:
            self.script.extend(
                r if isinstance(r, tuple) else (r, {"errors": [{"detail": "scripted"}]}, {}) for r in responses
            )

    def _respond(self, request):
        with self.lock:
            self.requests.append(request)
            self.times.append(time.monotonic())
            if self.script:
                return self.script.pop(0)
        return self.accept(request)

    def accept(self, request):
        return self.default

    def __enter__(self):
        self.server.__enter__()
        return self

    def __exit__(self, *exc):
        self.server.__exit__(*exc)


class FakeKlaviyo(ScriptedFake):
    def __init__(self):
        super().__init__()
        self.events: dict[str, dict] = {}

    def accept(self, request):
        if request.method == "POST" and request.path.rstrip("/") == "/api/events":
            attributes = request.json()["data"]["attributes"]
            self.events.setdefault(attributes.get("unique_id") or str(len(self.events)), attributes)
            return 202, b"", {}
        return 404, {"errors": [{"detail": "not found"}]}, {}


class FakePostscript(ScriptedFake):
    def accept(self, request):
        if request.method == "POST" and request.path == "/api/v2/message_requests":
            return 202, {"id": f"msgreq_{len(self.requests)}", "status": "processing"}, {}
        return 404, {}, {}


class FakeSlack(ScriptedFake):
    def accept(self, request):
        if request.path.startswith("/services/"):
            return 200, b"ok", {}
        if request.path.endswith("/chat.postMessage"):
            return 200, {"ok": True, "ts": f"1700000000.{len(self.requests):06d}"}, {}
        return 404, b"no_service", {}


class FakeProviders:
    """The three fakes of one test."""

    def __init__(self):
        self.klaviyo = FakeKlaviyo()
        self.postscript = FakePostscript()
        self.slack = FakeSlack()

    def __enter__(self):
        for fake in (self.klaviyo, self.postscript, self.slack):
            fake.__enter__()
        return self

    def __exit__(self, *exc):
        for fake in (self.klaviyo, self.postscript, self.slack):
            fake.__exit__(*exc)
