"""An OpenAI-compatible chat endpoint (OpenAI, vLLM, llama.cpp server, Ollama, LiteLLM, ...).

Request: ``POST {base}/v1/chat/completions`` with ``Authorization: Bearer <key>`` and a JSON body
``{"model", "messages": [{"role": "system"|"user", "content"}], "max_tokens", "temperature": 0}``.
Response: ``{"choices": [{"message": {"role": "assistant", "content": "..."}}], ...}``; errors come
as ``{"error": {"message", "type", "code"}}``. 429 and 5xx are retried after ``retry-after-ms`` /
``Retry-After`` (seconds or an HTTP date; capped) or an exponential backoff; 401/403 and other 4xx are
not. Error messages never carry the key or a response body (OpenAI's 401 echoes part of the key).
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from typing import Any

import httpx

from music_core.llm.prompt import build_prompt, clean_note
from music_core.llm.types import AnalystError, AnalystNote, PromptInput

USER_AGENT = "music-analyzer/0.1 (self-hosted music analysis)"


def endpoint(base_url: str) -> str:
    """``{base}/v1/chat/completions``; a base that already ends in ``/v1`` is accepted too."""
    base = base_url.strip().rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise ValueError("llm_url must be an http:// or https:// URL")
    if base.endswith("/v1"):
        base = base[:-3]
    return f"{base}/v1/chat/completions"


def retry_after(response: httpx.Response, now: float | None = None) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` or ``Retry-After`` (delta seconds or an HTTP date)."""
    millis = response.headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = (response.headers.get("retry-after") or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class OpenAIAnalyst:
    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        max_new_tokens: int = 256,
        timeout: float = 60.0,
        retries: int = 2,
        backoff: float = 1.0,
        max_wait: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not model:
            raise ValueError("llm_model must name the endpoint's model")
        self.url = endpoint(base_url)
        self.model = model
        self.model_id = f"openai:{model}"
        self.max_new_tokens = max_new_tokens
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait
        self._sleep = sleep
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)), headers=headers, transport=transport
        )

    def close(self) -> None:
        self._client.close()

    def body(self, prompt_input: PromptInput) -> dict[str, Any]:
        prompt = build_prompt(prompt_input)
        return {
            "model": self.model,
            "messages": [
                {"role": "system", "content": prompt.system},
                {"role": "user", "content": prompt.user},
            ],
            "max_tokens": self.max_new_tokens,
            "temperature": 0,
        }

    def _wait(self, attempt: int, response: httpx.Response | None) -> None:
        advised = retry_after(response) if response is not None else None
        self._sleep(min(self.max_wait, advised if advised is not None else self.backoff * 2**attempt))

    def _post(self, body: dict[str, Any]) -> httpx.Response:
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self._client.post(self.url, json=body)
            except httpx.TimeoutException as exc:
                if last:
                    raise AnalystError(f"LLM endpoint timed out ({type(exc).__name__})") from exc
                self._wait(attempt, None)
                continue
            except httpx.TransportError as exc:
                if last:
                    raise AnalystError(f"LLM endpoint unreachable ({type(exc).__name__})") from exc
                self._wait(attempt, None)
                continue
            status = response.status_code
            if (status == 429 or status >= 500) and not last:
                self._wait(attempt, response)
                continue
            if status in (401, 403):
                raise AnalystError(f"LLM endpoint refused the API key (HTTP {status})")
            if status == 429:
                raise AnalystError(f"LLM endpoint rate limit: gave up after {self.retries + 1} attempts")
            if status != 200:
                raise AnalystError(f"LLM endpoint answered HTTP {status}{_error_code(response)}")
            return response
        raise AssertionError("unreachable")

    def analyse(self, prompt_input: PromptInput) -> AnalystNote:
        response = self._post(self.body(prompt_input))
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise AnalystError("LLM endpoint answered with an unexpected JSON shape") from exc
        if not isinstance(content, str):
            raise AnalystError("LLM endpoint answered without text content")
        return AnalystNote(clean_note(content), self.model_id)


def _error_code(response: httpx.Response) -> str:
    """The documented error ``code``/``type`` identifier (never the message, which may echo input)."""
    try:
        error = response.json().get("error") or {}
        code = error.get("code") or error.get("type")
    except (ValueError, AttributeError):
        return ""
    return (
        f" ({code})" if isinstance(code, str) and code.replace("_", "").isalnum() and len(code) < 60 else ""
    )
