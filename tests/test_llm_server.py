"""The client core under the judge and the completions client: retries, cancellation and errors."""

import threading

import openai
import pytest

from llmtut.llm_server import Cancelled, LLMServer, LLMServerError, LLMServerUnreachableError, retryable


def status_error(code: int) -> openai.APIStatusError:
    """An HTTP error as the openai client raises it (built without a response: openai's HTTP library
    differs between versions, and only the status and message matter here)."""
    error = openai.APIStatusError.__new__(openai.APIStatusError)
    Exception.__init__(error, f"stub {code}")
    error.status_code, error.message = code, f"stub {code}"
    return error


def connection_error() -> openai.APIConnectionError:
    error = openai.APIConnectionError.__new__(openai.APIConnectionError)
    Exception.__init__(error, "Connection error.")
    return error


def failing_then(failures: list[Exception], result: str = "ok"):
    """A request that raises each of `failures` in turn, then returns `result`; it counts its calls."""
    calls = []

    def request(client):
        calls.append(client)
        if len(calls) <= len(failures):
            raise failures[len(calls) - 1]
        return result

    return request, calls


def server(**kwargs) -> LLMServer:
    return LLMServer("m", "http://127.0.0.1:9/v1", backoff_s=0.01, **kwargs)


def test_only_transient_statuses_are_retried():
    assert [c for c in (400, 401, 404, 408, 422, 429, 500, 503) if retryable(c)] == [408, 429, 500, 503]


def test_transient_failures_are_retried_until_one_succeeds():
    request, calls = failing_then([status_error(503), connection_error()])
    attempts = []
    assert server(max_retries=2).call(request, on_attempt=attempts.append) == "ok"
    assert len(calls) == 3 and attempts == [0, 1, 2]


def test_a_refusal_is_not_retried_and_says_what_to_fix():
    request, calls = failing_then([status_error(404)])
    with pytest.raises(LLMServerError, match="ends in /v1.*offer /v1/completions") as info:
        server(max_retries=3, endpoint="/v1/completions").call(request)
    assert len(calls) == 1 and info.value.__cause__ is None


def test_giving_up_names_the_attempts_and_the_hint():
    request, calls = failing_then([connection_error()] * 3)
    with pytest.raises(LLMServerUnreachableError, match=r"\(3 attempts\).*transformers serve.*use the tiny"):
        server(max_retries=2, offline_hint="Or use the tiny profile.").call(request)
    assert len(calls) == 3
    request, _ = failing_then([status_error(500)] * 2)
    with pytest.raises(LLMServerError, match=r"HTTP 500 \(stub 500\) in 2 attempts"):
        server(max_retries=1).call(request)


def test_a_stopped_run_sends_nothing_more():
    stop = threading.Event()
    stop.set()
    request, calls = failing_then([])
    with pytest.raises(Cancelled):
        server().call(request, stop=stop)
    assert calls == []


def test_negative_retries_are_refused():
    with pytest.raises(ValueError, match="max_retries"):
        server(max_retries=-1)
