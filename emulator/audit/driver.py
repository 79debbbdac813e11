"""The HTTP driver: `submit(token)` as a form post (or JSON request) to the application under test.

The token goes into the form field named `token_field` (into a JSON body instead when any
`json_fields` are given); the answer counts as "accepted" when its
status is one of `accept_status`. Every request carries `X-Forwarded-For: <user ip>`, so an app
that forwards the user's IP to validate can be told from one that sends its own."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field

from .model import USER_IP


@dataclass(frozen=True)
class HttpTarget:
    url: str
    token_field: str
    accept_status: tuple[int, ...]
    method: str = "POST"
    form: Mapping[str, str] = field(default_factory=dict)
    json_fields: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 30.0
    user_ip: str = USER_IP

    def __call__(self, token: str) -> bool:
        return self.status(token) in self.accept_status

    def status(self, token: str) -> int:
        request = self._request(token)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
                return response.status
        except urllib.error.HTTPError as exc:
            exc.read()
            return exc.code

    def _request(self, token: str) -> urllib.request.Request:
        headers = {"X-Forwarded-For": self.user_ip}
        url, data = self.url, None
        if self.json_fields:
            data = json.dumps({**self.json_fields, self.token_field: token}).encode()
            headers["Content-Type"] = "application/json"
        else:
            fields = urllib.parse.urlencode({**self.form, self.token_field: token})
            if self.method == "GET":
                url += ("&" if "?" in url else "?") + fields
            else:
                data = fields.encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
        return urllib.request.Request(url, data=data, method=self.method, headers=headers)
