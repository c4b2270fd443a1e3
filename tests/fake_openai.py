"""A local server with the documented shapes of OpenAI's ``POST /v1/chat/completions``.

Success: ``{"id", "object": "chat.completion", "created", "model", "choices": [{"index", "message":
{"role": "assistant", "content"}, "finish_reason"}], "usage": {...}}``. Errors: ``{"error": {"message",
"type", "param", "code"}}`` with 401 (a wrong key; the message echoes part of it, as OpenAI's does),
400 (a malformed body), 429 with ``Retry-After``, and 500. ``state.script`` lists what the next
requests get ("429", "500", "slow", "bad-shape"); otherwise a well-formed answer that depends on the
request (how many messages, how long the user turn).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

KEY = "sk-test-0123456789abcdef"


@dataclass
class State:
    key: str = KEY
    script: list[str] = field(default_factory=list)
    retry_after: str = "1"
    slow_seconds: float = 2.0
    requests: list[dict[str, Any]] = field(default_factory=list)  # {"path", "headers", "body", "at"}
    answers: list[str] = field(default_factory=list)


def _error(message: str, kind: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _bad_body(body: Any) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        return "you must provide a model parameter"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty array"
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant", "developer"):
            return "invalid message role"
        if not isinstance(m.get("content"), str):
            return "message content must be a string"
    if "max_tokens" in body and (not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1):
        return "max_tokens must be a positive integer"
    return None


def _handler(state: State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            state.requests.append(
                {"path": self.path, "headers": dict(self.headers), "body": body, "at": time.monotonic()}
            )
            if self.path != "/v1/chat/completions":
                self._send(404, _error(f"Invalid URL (POST {self.path})", "invalid_request_error", None))
                return
            if self.headers.get("Authorization") != f"Bearer {state.key}":
                given = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                shown = f"{given[:3]}***{given[-4:]}" if len(given) > 8 else given
                self._send(401, _error(f"Incorrect API key provided: {shown}.", "invalid_request_error",
                                       "invalid_api_key"))  # fmt: skip
                return
            action = state.script.pop(0) if state.script else "ok"
            if action == "429":
                self._send(429, _error("Rate limit reached for requests", "requests", "rate_limit_exceeded"),
                           {"Retry-After": state.retry_after})  # fmt: skip
                return
            if action == "500":
                self._send(
                    500,
                    _error("The server had an error while processing your request.", "server_error", None),
                )
                return
            if action == "slow":
                time.sleep(state.slow_seconds)
            if action == "bad-shape":
                self._send(200, {"id": "chatcmpl-x", "object": "chat.completion", "choices": []})
                return
            problem = _bad_body(body)
            if problem:
                self._send(400, _error(problem, "invalid_request_error", None))
                return
            user = next(m["content"] for m in body["messages"] if m["role"] == "user")
            content = (
                f"The transcript misses {len(user) % 7 + 1} lines; {len(body['messages'])} messages read. "
                "Backing vocals were likely not transcribed."
            )
            state.answers.append(content)
            self._send(200, {
                "id": f"chatcmpl-{len(state.requests)}", "object": "chat.completion", "created": int(time.time()),
                "model": body["model"], "system_fingerprint": "fp_test",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": None},
                             "logprobs": None, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": len(user.split()), "completion_tokens": len(content.split()),
                          "total_tokens": len(user.split()) + len(content.split())},
            })  # fmt: skip

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that timed out closed the socket a "slow" answer writes to


@contextmanager
def fake_openai(state: State | None = None) -> Iterator[tuple[str, State]]:
    """(base URL, state) of a server on a free loopback port."""
    state = state or State()
    server = _Server(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
