"""A fake LoyalNest Collective workspace: Slack's Web API methods the community app calls
(`users.info`, `conversations.invite`, `admin.conversations.invite`) plus the incoming
webhooks of tests/fakes/notifications.FakeSlack, on loopback, talked to by `slack-sdk`.

Members and channel memberships are kept as Slack keeps them: inviting a member already in a
channel answers `already_in_channel`, an unknown member `user_not_found`. Scripted answers
(`answer(...)`) come first, as in every ScriptedFake.
"""

import json
from urllib.parse import parse_qsl, urlsplit

from tests.fakes.notifications import FakeSlack

BOT_TOKEN = "xoxb-test-collective"
ADMIN_TOKEN = "xoxp-test-admin"


def _params(request) -> dict:
    params = dict(parse_qsl(urlsplit(request.path).query))
    if request.body:
        if request.headers.get("Content-Type", "").startswith("application/json"):
            params.update(json.loads(request.body))
        else:
            params.update(parse_qsl(request.body.decode()))
    return params


def _ids(value) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [v for v in str(value or "").split(",") if v]


class FakeSlackWorkspace(FakeSlack):
    def __init__(self):
        super().__init__()
        self.members: dict[str, dict] = {}
        self.channels: dict[str, set[str]] = {}

    def add_member(self, user_id: str, **profile) -> None:
        self.members[user_id] = {"id": user_id, "name": user_id.lower(), "deleted": False, "is_bot": False, **profile}

    def calls_of(self, method: str) -> list:
        return [r for r in self.requests if urlsplit(r.path).path.endswith(f"/{method}")]

    def _token(self, request) -> str:
        return request.headers.get("Authorization", "").removeprefix("Bearer ")

    def accept(self, request):
        path = urlsplit(request.path).path
        if not path.startswith("/api/"):
            return super().accept(request)
        method = path.removeprefix("/api/")
        token = self._token(request)
        if token not in (BOT_TOKEN, ADMIN_TOKEN):
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        params = _params(request)
        if method == "users.info":
            user = self.members.get(params.get("user", ""))
            if user is None:
                return 200, {"ok": False, "error": "user_not_found"}, {}
            return 200, {"ok": True, "user": user}, {}
        if method == "conversations.invite":
            return self._invite(params.get("channel", ""), _ids(params.get("users")))
        if method == "admin.conversations.invite":
            if token != ADMIN_TOKEN:
                return 200, {"ok": False, "error": "not_allowed_token_type"}, {}
            return self._invite(params.get("channel_id", ""), _ids(params.get("user_ids")))
        return 200, {"ok": False, "error": "unknown_method"}, {}

    def _invite(self, channel: str, users: list[str]):
        if not channel:
            return 200, {"ok": False, "error": "channel_not_found"}, {}
        for user in users:
            if user not in self.members:
                return 200, {"ok": False, "error": "user_not_found"}, {}
        present = self.channels.setdefault(channel, set())
        if all(user in present for user in users):
            return 200, {"ok": False, "error": "already_in_channel"}, {}
        present.update(users)
        return 200, {"ok": True, "channel": {"id": channel}}, {}
