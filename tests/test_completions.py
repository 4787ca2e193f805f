import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from llmtut.completions import (
    CompletionsClient,
    CompletionsConfig,
    CompletionsError,
    CompletionsUnreachableError,
    read_cache,
)
from llmtut.serve import free_port

PROMPTS = [f"Question {i}: why is the sky blue?" for i in range(8)]


def answer(prompt: str, temperature: float = 0.0) -> str:
    """What the stub answers: a function of the prompt and temperature, so order and keys can be checked."""
    return f"{prompt} -> t={temperature}"


# ----- a stub OpenAI-compatible /v1/completions server -----


class _Stub(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server = self.server
        if self.path != "/v1/completions":
            self._send(404, {"error": {"message": f"no route {self.path}"}})
            return
        with server.lock:  # decide under the lock: concurrent requests see consistent counters
            server.requests.append(body)
            index = len(server.requests) - 1
            if index < server.fail_first:
                status = server.fail_status
            elif server.fail_after is not None and server.n_ok >= server.fail_after:
                status = 500
            else:
                status, server.n_ok = 200, server.n_ok + 1
        time.sleep(server.delay(index, body))
        if status != 200:
            self._send(status, {"error": {"message": f"stub failure {status}"}})
            return
        with server.lock:
            server.answered.append(body["prompt"])
        self._send(
            200,
            {
                "id": f"cmpl-{index}",
                "object": "text_completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "text": server.reply(body["prompt"], body["temperature"]),
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
            },
        )

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client timed out and hung up
            pass

    def log_message(self, *args):  # keep the test output quiet
        pass


@pytest.fixture
def stub():
    """A local /v1/completions endpoint. Set `fail_first` (+ `fail_status`), `fail_after` or `delay`."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    server.lock = threading.Lock()
    server.requests, server.answered, server.n_ok = [], [], 0
    server.fail_first, server.fail_status = 0, 500  # the first fail_first requests get fail_status
    server.fail_after = None  # after this many successes, every request gets a 500
    server.delay = lambda index, body: 0.0  # seconds to wait before answering request `index`
    server.reply = answer  # the completion text (or None) for (prompt, temperature)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    server.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield server
    server.shutdown()
    server.server_close()


def client(stub, tmp_path=None, **overrides) -> CompletionsClient:
    config = CompletionsConfig(model="teacher", base_url=stub.base_url, backoff_s=0.01, progress=False)
    if tmp_path is not None:
        overrides.setdefault("cache_path", tmp_path / "cache.jsonl")
    return CompletionsClient(config, **overrides)


def requested(stub) -> list[str]:
    return [body["prompt"] for body in stub.requests]


# ----- order, concurrency, parameters -----


def test_results_come_back_in_prompt_order_when_the_server_answers_out_of_order(stub):
    prompts = [f"p{i}" for i in range(12)]
    # Later prompts answer sooner, so within each batch of concurrent requests the order is reversed.
    stub.delay = lambda index, body: 0.02 * (12 - int(body["prompt"][1:]) % 4)
    texts = client(stub, max_workers=4).complete(prompts)
    assert texts == [answer(p) for p in prompts]
    assert sorted(stub.answered) == sorted(prompts) and stub.answered != prompts  # it really was out of order


def test_each_prompt_is_one_request_with_the_generation_parameters(stub):
    c = client(stub, max_tokens=7, temperature=0.5, top_p=0.9, stop=["\n\n"], seed=3)
    assert c.complete(["a", "b", "a"]) == [answer("a", 0.5), answer("b", 0.5), answer("a", 0.5)]
    assert sorted(requested(stub)) == ["a", "b"]  # a repeated prompt is sent once
    body = stub.requests[0]
    assert body["model"] == "teacher" and isinstance(body["prompt"], str)
    assert {k: body[k] for k in ("max_tokens", "temperature", "top_p", "stop", "seed")} == {
        "max_tokens": 7,
        "temperature": 0.5,
        "top_p": 0.9,
        "stop": ["\n\n"],
        "seed": 3,
    }
    assert "seed" not in client(stub).params  # unset optional fields are not sent at all


# ----- retries and errors -----


@pytest.mark.parametrize("status", [500, 503, 429])
def test_transient_failures_are_retried_with_backoff_until_they_succeed(stub, tmp_path, status):
    stub.fail_first, stub.fail_status = 2, status
    log = tmp_path / "requests.jsonl"
    c = client(stub, max_retries=3, backoff_s=0.05, max_workers=1, log_path=log)
    start = time.monotonic()
    assert c.complete(["hello"]) == [answer("hello")]
    assert len(stub.requests) == 3  # two failures, then the answer
    assert time.monotonic() - start >= 0.05 + 0.1  # backoff 0.05 s, then 0.1 s
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["prompt"], e["attempt"]) for e in entries] == [("hello", 0), ("hello", 1), ("hello", 2)]
    assert entries[0]["params"]["temperature"] == 0.0


def test_a_server_that_keeps_failing_raises_after_max_retries(stub):
    stub.fail_first = 100
    with pytest.raises(CompletionsError, match=r"HTTP 500 .* in 3 attempts"):
        client(stub, max_retries=2).complete(["hello"])
    assert len(stub.requests) == 3


def test_a_timeout_is_retried_and_a_server_that_is_always_too_slow_is_reported(stub):
    stub.delay = lambda index, body: 1.5 if index == 0 else 0.0
    assert client(stub, timeout_s=0.5, max_retries=1).complete(["slow"]) == [answer("slow")]
    assert len(stub.requests) == 2

    stub.delay = lambda index, body: 1.0
    with pytest.raises(CompletionsUnreachableError, match="timeout_s=0.2"):
        client(stub, timeout_s=0.2, max_retries=1).complete(["slow again"])


def test_an_unreachable_server_says_which_url_and_what_to_do(tmp_path):
    base_url = f"http://127.0.0.1:{free_port()}/v1"
    log = tmp_path / "requests.jsonl"
    c = CompletionsClient(model="teacher", base_url=base_url, max_retries=2, backoff_s=0.01, log_path=log)
    with pytest.raises(CompletionsUnreachableError, match="transformers serve") as info:
        c.complete(["hello"])
    message = str(info.value)
    assert base_url in message and "PROFILE='tiny'" in message and "3 attempts" in message
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no httpx traceback chain
    assert len(log.read_text().splitlines()) == 3  # the first attempt and two retries


def test_a_wrong_path_fails_at_once_and_says_the_base_url_usually_ends_in_v1(stub):
    wrong = client(stub, base_url=stub.base_url.removesuffix("/v1"), max_retries=3, backoff_s=1.0)
    start = time.monotonic()
    with pytest.raises(CompletionsError, match="ends in /v1"):
        wrong.complete(["hello"])
    assert time.monotonic() - start < 1.0  # a 404 is not retried


# ----- the cache: resuming without repeating finished calls -----


def test_a_second_run_with_the_same_prompts_sends_nothing(stub, tmp_path):
    first = client(stub, tmp_path, max_workers=3)
    texts = first.complete(PROMPTS)
    assert len(stub.requests) == len(PROMPTS) and first.n_requested == len(PROMPTS)
    assert len((tmp_path / "cache.jsonl").read_text().splitlines()) == len(PROMPTS)

    second = client(stub, tmp_path, max_workers=3)  # a new client, e.g. after a kernel restart
    assert second.complete(PROMPTS) == texts
    assert len(stub.requests) == len(PROMPTS)  # nothing more was sent
    assert (second.n_cached, second.n_requested) == (len(PROMPTS), 0)


def test_an_interrupted_run_keeps_its_finished_results_and_the_next_one_requests_only_the_rest(
    stub, tmp_path
):
    stub.fail_after = 3  # the server answers three prompts, then fails for good
    with pytest.raises(CompletionsError, match="HTTP 500"):
        client(stub, tmp_path, max_workers=2, max_retries=1).complete(PROMPTS)
    cached = [json.loads(line) for line in (tmp_path / "cache.jsonl").read_text().splitlines()]
    assert len(cached) == 3 and all(r["text"] == answer(r["prompt"]) for r in cached)
    assert len(stub.requests) < 2 * len(PROMPTS)  # it stopped early instead of trying every prompt

    stub.fail_after, stub.requests = None, []
    resumed = client(stub, tmp_path, max_workers=2)
    assert resumed.complete(PROMPTS) == [answer(p) for p in PROMPTS]
    assert sorted(requested(stub)) == sorted(set(PROMPTS) - {r["prompt"] for r in cached})
    assert (resumed.n_cached, resumed.n_requested) == (3, 5)


def test_a_line_cut_short_by_a_crash_is_dropped_and_its_prompt_requested_again(stub, tmp_path):
    path = tmp_path / "cache.jsonl"
    client(stub, tmp_path, max_workers=1).complete(PROMPTS[:4])
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:3]) + "\n" + lines[3][:25])  # the last write was killed midway
    lost = json.loads(lines[3])["prompt"]

    stub.requests = []
    assert client(stub, tmp_path).complete(PROMPTS[:5]) == [answer(p) for p in PROMPTS[:5]]
    assert sorted(requested(stub)) == sorted([lost, PROMPTS[4]])
    assert len(read_cache(path)) == 5  # every line parses again: the fragment did not swallow an append
    assert all(json.loads(line) for line in path.read_text().splitlines())


def test_an_empty_reply_is_an_empty_string_in_order_and_cached_not_an_error(stub, tmp_path):
    # A teacher whose reply starts with a newline, cut there by stop=["\n"], answers "" (some servers: null).
    replies = {PROMPTS[1]: "", PROMPTS[2]: None}
    stub.reply = lambda prompt, temperature: replies.get(prompt, answer(prompt, temperature))
    expected = [answer(PROMPTS[0]), "", "", answer(PROMPTS[3])]
    assert client(stub, tmp_path, stop=["\n"]).complete(PROMPTS[:4]) == expected
    stub.requests = []
    again = client(stub, tmp_path, stop=["\n"])  # the empty replies are cached like the others
    assert again.complete(PROMPTS[:4]) == expected
    assert stub.requests == [] and again.n_cached == 4


def test_different_generation_parameters_are_different_cache_keys(stub, tmp_path):
    cold = client(stub, tmp_path, temperature=0.0)
    warm = client(stub, tmp_path, temperature=0.7)
    assert cold.key("p") != warm.key("p") and cold.key("p") == client(stub, tmp_path).key("p")
    assert cold.complete(PROMPTS[:3]) == [answer(p, 0.0) for p in PROMPTS[:3]]
    assert warm.complete(PROMPTS[:3]) == [answer(p, 0.7) for p in PROMPTS[:3]]
    assert len(stub.requests) == 6  # the cached cold answers were not reused for the warm ones
    again = client(stub, tmp_path, temperature=0.7)
    assert again.complete(PROMPTS[:3]) == [answer(p, 0.7) for p in PROMPTS[:3]]
    assert len(stub.requests) == 6
