"""One client core for the OpenAI-compatible servers the book talks to (`transformers serve`, vLLM, OpenAI).

The judge of chapter 01 (`llmtut.judge`, chat completions) and the teacher client of chapter 06
(`llmtut.completions`, legacy completions) both send their requests through `LLMServer.call`: one
connection setup, one retry policy for transient failures (timeouts, connection errors, 408, 429,
5xx) with exponential backoff, written out here so that it is visible and testable, and one set of
errors that say what to fix. What each client does with a reply (parse a score, cache a rationale)
stays in its own module.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TypeVar

import openai

T = TypeVar("T")


class LLMServerError(RuntimeError):
    """The server refused a request, or kept failing after every retry."""


class LLMServerUnreachableError(LLMServerError, ConnectionError):
    """No server answered at the configured base_url (or not in time), even after every retry."""


class Cancelled(Exception):
    """A request abandoned because the run it belonged to is stopping (`call(..., stop=...)` was set)."""


def retryable(status_code: int) -> bool:
    """408 request timeout, 429 rate limit, 5xx server trouble: worth another try. Other 4xx are ours to fix."""
    return status_code in (408, 429) or status_code >= 500


class LLMServer:
    """A model behind an OpenAI-compatible API at `base_url`, with our retry policy and clear errors.

    `call(request)` runs `request(client)` (an `openai.OpenAI`) up to `max_retries + 1` times: a
    transient failure waits `backoff_s * 2 ** (k - 1)` before retry k, any other refusal raises at
    once. `endpoint` names what the requests need in error messages (e.g. "/v1/completions"), and
    `offline_hint` says what to do without a server.
    """

    def __init__(
        self,
        model: str,
        base_url: str = "http://localhost:8000/v1",
        api_key: str | None = None,
        *,
        timeout_s: float = 120.0,
        max_retries: int = 3,
        backoff_s: float = 1.0,
        endpoint: str = "/v1/chat/completions",
        offline_hint: str = "",
    ) -> None:
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}.")
        self.model, self.base_url, self.endpoint, self.offline_hint = model, base_url, endpoint, offline_hint
        self.timeout_s, self.max_retries, self.backoff_s = timeout_s, max_retries, backoff_s
        # max_retries=0: the openai client's own retries would hide attempts from our policy, logs and tests.
        # A local server ignores the key, but the openai client insists on one.
        self.client = openai.OpenAI(
            base_url=base_url,
            api_key=api_key or os.environ.get("OPENAI_API_KEY") or "not-needed",
            timeout=timeout_s,
            max_retries=0,
        )

    def call(
        self,
        request: Callable[[openai.OpenAI], T],
        stop: threading.Event | None = None,
        on_attempt: Callable[[int], None] | None = None,
    ) -> T:
        """`request(self.client)`, retrying transient failures; `on_attempt(k)` runs before attempt k (0, 1, ...).

        When `stop` is set (by a run that is ending), no further attempt is made: Cancelled is raised.
        """
        stop = stop or threading.Event()
        error: openai.APIError | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                stop.wait(self.backoff_s * 2 ** (attempt - 1))  # wakes early if the run stops
            if stop.is_set():
                raise Cancelled
            if on_attempt:
                on_attempt(attempt)
            try:
                return request(self.client)
            except openai.APIConnectionError as e:  # includes APITimeoutError
                error = e
            except openai.APIStatusError as e:
                if not retryable(e.status_code):
                    raise self.refused(e) from None  # from None: the httpx chain says nothing the message does not
                error = e
        raise self.gave_up(error) from None

    def refused(self, e: openai.APIStatusError) -> LLMServerError:
        """The error for a request the server refused for good (a 4xx other than 408 and 429)."""
        if e.status_code == 404:
            return LLMServerError(
                f"base_url={self.base_url!r} answered 404 ({e.message}). An OpenAI-compatible base URL usually "
                f"ends in /v1, the server must offer {self.endpoint}, and it must serve the model {self.model!r}."
            )
        return LLMServerError(
            f"The server at base_url={self.base_url!r} refused a request for model {self.model!r}: "
            f"HTTP {e.status_code}: {e.message}"
        )

    def gave_up(self, e: openai.APIError | None) -> LLMServerError:
        """The error after every attempt failed with `e`, the last failure."""
        tries = f"{self.max_retries + 1} attempt{'s' if self.max_retries else ''}"
        if isinstance(e, openai.APITimeoutError):
            return LLMServerUnreachableError(
                f"The server at base_url={self.base_url!r} did not answer within timeout_s={self.timeout_s} in "
                f"{tries}. Is it still loading the model, or too slow for this timeout? Raise timeout_s, or ask "
                "for fewer tokens or fewer requests at a time."
            )
        if isinstance(e, openai.APIConnectionError):
            return LLMServerUnreachableError(
                f"Could not connect to a server at base_url={self.base_url!r} ({tries}). Start an "
                "OpenAI-compatible server there, e.g. `transformers serve <model> --port 8000` (base_url "
                "'http://localhost:8000/v1'), or check base_url and that the server is up. " + self.offline_hint
            )
        status = f"HTTP {e.status_code} ({e.message})" if isinstance(e, openai.APIStatusError) else repr(e)
        return LLMServerError(
            f"The server at base_url={self.base_url!r} kept failing for model {self.model!r}: {status} in "
            f"{tries}. Retry later, or send fewer requests at a time if it is overloaded (429)."
        )
