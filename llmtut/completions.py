"""Asking a remote LLM for many text completions: concurrently, in order, with retries, resumably.

Chapter 06 asks a teacher LLM behind an OpenAI-compatible legacy completions API
(`/v1/completions`: `transformers serve`, vLLM, OpenAI itself) for a rationale per question, once
for the clean questions and once per privacy budget for the perturbed ones: thousands of calls.
`CompletionsClient.complete` sends one request per prompt (`transformers serve` takes one prompt
per request), at most `max_workers` at a time, and returns the texts in prompt order. Transient
failures (timeouts, connection errors, 429, 5xx) are retried with exponential backoff by the client
core the judge shares (`llmtut.llm_server`). Every finished completion is appended to a JSONL cache
keyed by (model, prompt, generation parameters) as soon as it arrives, so a re-run, or a run after
an interruption, requests only what is missing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from llmtut.jsonl import complete_lines
from llmtut.llm_server import LLMServer, LLMServerError, LLMServerUnreachableError


@dataclass(frozen=True)
class CompletionsConfig:
    """Where the server is, how to generate, and how hard to try. See `CompletionsClient`."""

    model: str  # the model name the server serves (for `transformers serve`: its path or Hub id)
    base_url: str = "http://localhost:8000/v1"
    api_key: str | None = None  # None: $OPENAI_API_KEY, else a placeholder (a local server ignores it)
    # Generation parameters: each one is part of the cache key.
    max_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    stop: list[str] | None = None
    seed: int | None = None  # sent only when set
    # Transport.
    max_workers: int = 4  # concurrent requests
    timeout_s: float = 120.0  # per request
    max_retries: int = 3  # retries after the first attempt, for timeouts, connection errors, 429 and 5xx
    backoff_s: float = 1.0  # wait before retry k (k = 1, 2, ...): backoff_s * 2 ** (k - 1)
    # Files (JSONL, appended to).
    cache_path: str | Path | None = None  # finished completions; None: no cache
    log_path: str | Path | None = None  # every request sent (each attempt); None: no log
    progress: bool = True  # tqdm bar in `complete`


# The errors of the client core, under this client's names.
CompletionsError = LLMServerError
CompletionsUnreachableError = LLMServerUnreachableError


def cache_key(model: str, prompt: str, params: dict) -> str:
    """A hash of everything a completion depends on: the model, the prompt and the generation parameters."""
    payload = json.dumps({"model": model, "prompt": prompt, "params": params}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def read_cache(path: str | Path) -> dict[str, dict]:
    """The records of a completions cache by key; a line cut short by a crash is dropped, not fatal."""
    records: dict[str, dict] = {}
    for lineno, line in enumerate(complete_lines(path), 1):
        try:
            record = json.loads(line)
            records[record["key"]] = record
        except (json.JSONDecodeError, KeyError, TypeError):
            warnings.warn(
                f"{path}, line {lineno} is not a cache record; skipped: {line[:80]!r}", stacklevel=2
            )
    return records


class CompletionsClient:
    """Text completions from an LLM behind an OpenAI-compatible `/v1/completions` endpoint.

    `complete(prompts)` returns one completion text per prompt, in prompt order. Prompts already in the
    cache (`cache_path`) are not requested again; the others are sent one per request, `max_workers`
    at a time, each with `timeout_s` and up to `max_retries` retries with exponential backoff. Each
    finished completion is appended to the cache (and flushed) as soon as it arrives, so an
    interrupted run loses at most the requests in flight. If a request fails for good, the run stops:
    pending prompts are not sent, the ones in flight are still cached if they succeed, and the error
    says what to fix.

    Build it from a `CompletionsConfig`, from keyword arguments, or both (keywords override):
    `CompletionsClient(model="teacher", base_url="http://localhost:8000/v1", cache_path="rationales.jsonl")`.
    Serve a model locally with e.g. `transformers serve Qwen/Qwen2.5-7B-Instruct --port 8000`.
    """

    def __init__(self, config: CompletionsConfig | None = None, **overrides) -> None:
        cfg = CompletionsConfig(**overrides) if config is None else dataclasses.replace(config, **overrides)
        if cfg.max_workers < 1 or cfg.max_retries < 0:
            raise ValueError(
                f"need max_workers >= 1 and max_retries >= 0, got {cfg.max_workers} and {cfg.max_retries}."
            )
        self.config = cfg
        self.server = LLMServer(
            cfg.model, cfg.base_url, cfg.api_key, timeout_s=cfg.timeout_s, max_retries=cfg.max_retries,
            backoff_s=cfg.backoff_s, endpoint="/v1/completions",
            offline_hint="Without a server, run the chapter with PROFILE='tiny', which starts a local one itself.",
        )
        for path in (cfg.cache_path, cfg.log_path):
            if path:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.cache = read_cache(cfg.cache_path) if cfg.cache_path else {}
        self.n_cached = self.n_requested = 0  # of the last `complete` call
        self._log_lock = threading.Lock()

    @property
    def params(self) -> dict:
        """The generation parameters sent with every request (and hashed into the cache key)."""
        cfg = self.config
        params = {"max_tokens": cfg.max_tokens, "temperature": cfg.temperature, "top_p": cfg.top_p}
        # Unset optional fields are left out rather than sent as null, which some servers reject.
        params.update({k: v for k, v in (("stop", cfg.stop), ("seed", cfg.seed)) if v is not None})
        return params

    def key(self, prompt: str) -> str:
        """The cache key of `prompt` under this client's model and parameters."""
        return cache_key(self.config.model, prompt, self.params)

    def complete(self, prompts: Sequence[str], desc: str | None = None) -> list[str]:
        """The completion text of each prompt, in order: from the cache, else from the server."""
        keys = [self.key(p) for p in prompts]
        # By key, so that a prompt repeated in `prompts` is sent once.
        todo = {k: p for k, p in zip(keys, prompts, strict=True) if k not in self.cache}
        self.n_cached, self.n_requested = len(prompts) - sum(k in todo for k in keys), len(todo)
        if todo:
            self._request_all(todo, desc, total=len(prompts))
        return [self.cache[k]["text"] for k in keys]

    def _request_all(self, todo: dict[str, str], desc: str | None, total: int) -> None:
        cfg = self.config
        stop = threading.Event()  # set when the run stops early: workers then skip their retries
        bar = tqdm(
            total=total,
            initial=total - len(todo),
            desc=desc or f"completions ({cfg.model})",
            disable=not cfg.progress,
        )
        cache_file = open(cfg.cache_path, "a", encoding="utf-8") if cfg.cache_path else None
        executor = ThreadPoolExecutor(max_workers=cfg.max_workers)
        futures: dict[Future, str] = {executor.submit(self._request, p, stop): k for k, p in todo.items()}
        try:
            for future in as_completed(futures):
                self._store(futures[future], todo[futures[future]], future.result(), cache_file)
                bar.update()
        finally:
            # On a failure or a Ctrl-C: send nothing new, let the requests in flight finish, and keep
            # those that succeeded, since they are paid for.
            stop.set()
            executor.shutdown(wait=True, cancel_futures=True)
            for future, key in futures.items():
                if (
                    key not in self.cache
                    and future.done()
                    and not future.cancelled()
                    and future.exception() is None
                ):
                    self._store(key, todo[key], future.result(), cache_file)
            if cache_file:
                cache_file.close()
            bar.close()

    def _store(self, key: str, prompt: str, text: str, cache_file) -> None:
        record = {
            "key": key,
            "model": self.config.model,
            "params": self.params,
            "prompt": prompt,
            "text": text,
        }
        self.cache[key] = record
        if cache_file:
            cache_file.write(json.dumps(record) + "\n")
            cache_file.flush()  # on disk before the next result: a crash loses only what is in flight

    def _log(self, prompt: str, attempt: int) -> None:
        if not self.config.log_path:
            return
        entry = {"time": time.time(), "model": self.config.model, "attempt": attempt, "prompt": prompt}
        with self._log_lock, open(self.config.log_path, "a", encoding="utf-8") as f:
            f.write(json.dumps({**entry, "params": self.params}) + "\n")

    def _request(self, prompt: str, stop: threading.Event) -> str:
        """One prompt's completion text, retrying transient failures (`LLMServer.call`); runs in a worker thread."""
        cfg = self.config
        completion = self.server.call(
            lambda client: client.completions.create(model=cfg.model, prompt=prompt, **self.params),
            stop=stop,
            on_attempt=lambda attempt: self._log(prompt, attempt),
        )
        if not completion.choices:
            raise CompletionsError(f"The server at base_url={cfg.base_url!r} returned no choices.")
        return completion.choices[0].text or ""
