import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from llmtut.judge import (
    RETRY_PROMPT,
    JudgeClient,
    JudgeError,
    JudgeUnreachableError,
    ReferenceScorer,
    Score,
    StaleScoresError,
    normalize_answer,
    parse_score,
    score_responses,
)
from llmtut.serve import ServeError, free_port, served

ENTRIES = [
    {"instruction": "Translate to Spanish.", "input": "dog", "output": "perro", "model_response": "perro"},
    {
        "instruction": "Name the capital of France.",
        "input": "",
        "output": "Paris",
        "model_response": "Paris.",
    },
    {"instruction": "What is 2 + 2?", "input": "", "output": "2 + 2 is 4.", "model_response": "It is 4"},
    {
        "instruction": "Rewrite politely.",
        "input": "Go away.",
        "output": "Please leave.",
        "model_response": "no",
    },
    {"instruction": "Opposite of hot?", "input": "", "output": "cold", "model_response": "The cold one"},
]


# ----- parsing -----


@pytest.mark.parametrize(
    "reply, expected",
    [
        ("85", 85),
        (" 85.", 85),
        ("85\n", 85),
        ("0", 0),
        ("100", 100),
        ("Score: 85", 85),
        ("score 7", 7),
        ("85/100", 85),
        ("101", None),
        ("-3", None),
        ("eighty", None),
        ("", None),
        ("   ", None),
        (None, None),
        ("85.5", None),
        ("85 or 90", None),
        ("I'd give it 85", None),
        ("**85**", None),
        ("1000", None),
    ],
)
def test_parse_score(reply, expected):
    assert parse_score(reply) == expected


# ----- the reference-based scorer -----


@pytest.mark.parametrize(
    "response, reference, expected",
    [
        ("Paris.", "Paris", 100),  # exact after normalization
        ("  The   Cold ", "The Cold!", 100),
        # case counts: copying a sentence does not capitalize it
        ("this quiet boy cooks the soup.", "This quiet boy cooks the soup.", 83),  # 5 of 6 words
        ("paris", "Paris", 0),
        ("the soup", "THE SOUP", 0),
        ("the big cat", "the cat", 80),  # precision 2/3, recall 1
        ("no", "Please leave.", 0),
        ("", "cold", 0),
    ],
)
def test_reference_scorer(response, reference, expected):
    assert ReferenceScorer().score("any prompt", reference, response) == Score(expected)


def test_case_counts_so_copying_the_input_does_not_capitalize_it():
    copied, reference = "this quiet boy cooks the soup.", "This quiet boy cooks the soup."
    assert normalize_answer(copied) != normalize_answer(reference)
    assert ReferenceScorer().score("Capitalize the sentence.", reference, copied).value < 100
    # spacing and the final full stop still do not count
    assert ReferenceScorer().score("q", reference, " This quiet  boy cooks the soup ") == Score(100)


# ----- a judge behind a stub OpenAI-compatible server -----


class _Stub(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server = self.server
        if self.path != "/v1/chat/completions":
            self._send(404, {"error": {"message": f"no route {self.path}"}})
            return
        server.requests.append(body)
        reply = server.replies.pop(0) if len(server.replies) > 1 else server.replies[0]
        self._send(
            200,
            {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": reply}}
                ],
            },
        )

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):  # keep the test output quiet
        pass


@pytest.fixture
def stub():
    """A local chat-completions endpoint that answers `stub.replies` in order (the last one repeats)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    server.requests, server.replies = [], ["0"]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    server.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield server
    server.shutdown()
    server.server_close()


def test_an_unparsable_reply_is_retried_in_the_same_conversation(stub):
    stub.replies = ["hmm", "72"]
    score = JudgeClient("judge", stub.base_url, seed=7).score("Translate: dog", "perro", "perro")
    assert score == Score(72, ("hmm", "72"))
    assert len(stub.requests) == 2
    first, second = stub.requests
    assert first["temperature"] == 0 and first["seed"] == 7 and first["model"] == "judge"
    assert "`Translate: dog`" in first["messages"][0]["content"]
    assert second["messages"][1:] == [
        {"role": "assistant", "content": "hmm"},
        {"role": "user", "content": RETRY_PROMPT},
    ]


def test_a_judge_that_never_gives_a_score_is_counted_as_unparsed_not_zero(stub, tmp_path):
    stub.replies = ["90", "hmm", "no idea", "maybe", "50"]
    judge = JudgeClient("judge", stub.base_url, max_attempts=3)
    with pytest.warns(UserWarning, match="1 of 3 responses got no parsable score"):
        report = score_responses(ENTRIES[:3], judge, tmp_path / "scores.jsonl", progress=False)
    assert report.scores == [90, None, 50]
    assert report.mean == 70
    assert report.unparsed == [{"index": 1, "replies": ["hmm", "no idea", "maybe"]}]
    assert report.summary() == {"n": 3, "n_parsed": 2, "n_unparsed": 1, "mean": 70, "n_resumed": 0}
    assert len(stub.requests) == 5
    lines = [json.loads(line) for line in (tmp_path / "scores.jsonl").read_text().splitlines()]
    assert [line["score"] for line in lines] == [90, None, 50]


def test_an_unreachable_judge_says_which_url_and_what_to_do():
    base_url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(JudgeUnreachableError, match="transformers serve") as info:
        JudgeClient("judge", base_url).score("q", "a", "a")
    assert base_url in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no httpx traceback chain


def test_a_wrong_path_says_the_base_url_usually_ends_in_v1(stub):
    with pytest.raises(JudgeError, match="ends in /v1"):
        JudgeClient("judge", stub.base_url.removesuffix("/v1")).score("q", "a", "a")


# ----- resuming -----


class CountingScorer:
    """ReferenceScorer that records what it scores and can be interrupted on its k-th call."""

    name = ReferenceScorer.name

    def __init__(self, interrupt_on: int | None = None):
        self.calls: list[str] = []
        self.interrupt_on = interrupt_on

    def score(self, prompt, reference, response):
        if len(self.calls) == self.interrupt_on:
            raise KeyboardInterrupt
        self.calls.append(prompt)
        return ReferenceScorer().score(prompt, reference, response)


def test_an_interrupted_run_resumes_without_scoring_anything_twice(tmp_path):
    path = tmp_path / "scores.jsonl"
    first = CountingScorer(interrupt_on=2)
    with pytest.raises(KeyboardInterrupt):
        score_responses(ENTRIES, first, path, progress=False)
    assert len(path.read_text().splitlines()) == 2  # both finished scores are on disk

    path.write_text(path.read_text() + '{"index": 2, "ke')  # and a line cut short by a kill
    second = CountingScorer()
    report = score_responses(ENTRIES, second, path, progress=False)
    assert len(second.calls) == 3 and set(first.calls).isdisjoint(second.calls)
    assert report.n_resumed == 2
    assert (
        report.scores
        == score_responses(ENTRIES, ReferenceScorer(), tmp_path / "fresh.jsonl", progress=False).scores
    )
    assert report.scores == [100, 100, 57, 0, 50]

    third = CountingScorer()  # everything is done: nothing is requested at all
    assert score_responses(ENTRIES, third, path, progress=False).scores == report.scores
    assert third.calls == []


def test_a_scores_file_for_other_data_or_another_scorer_raises(tmp_path, stub):
    path = tmp_path / "scores.jsonl"
    score_responses(ENTRIES, ReferenceScorer(), path, progress=False)
    changed = [dict(e) for e in ENTRIES]
    changed[3]["model_response"] = "Please leave."
    with pytest.raises(StaleScoresError, match="different record than entry 3"):
        score_responses(changed, ReferenceScorer(), path, progress=False)
    with pytest.raises(StaleScoresError, match="different record"):
        score_responses(ENTRIES[:2], ReferenceScorer(), path, progress=False)
    with pytest.raises(StaleScoresError, match="not by 'judge:judge'"):
        score_responses(ENTRIES, JudgeClient("judge", stub.base_url), path, progress=False)
    assert stub.requests == []


# ----- a real `transformers serve` on localhost, serving the tiny causal base -----


@pytest.fixture(scope="module")
def served_tiny_model(tmp_path_factory):
    """(base_url, model) of `transformers serve` started here on the tiny causal base, offline on CPU."""
    from transformers import AutoTokenizer

    from llmtut.chat_template import set_chat_template
    from llmtut.world import bases

    # serve applies the tokenizer's chat template; the base model has none, so give a copy the book's.
    model_dir = tmp_path_factory.mktemp("served") / "tiny-causal-base"
    shutil.copytree(bases.causal_base(progress=False), model_dir)
    tokenizer = set_chat_template(AutoTokenizer.from_pretrained(model_dir))
    tokenizer.save_pretrained(model_dir)

    try:
        with served(model_dir) as base_url:
            yield base_url, str(model_dir)
    except ServeError as err:
        pytest.fail(str(err))


@pytest.mark.serve
def test_a_real_transformers_serve_answers_and_its_non_scores_are_retried_and_reported(
    served_tiny_model, tmp_path
):
    base_url, model = served_tiny_model
    judge = JudgeClient(model, base_url, max_attempts=2, max_tokens=8)

    reply = judge.complete([{"role": "user", "content": "Translate to Spanish: dog"}])
    assert isinstance(reply, str) and reply.strip()  # the request reached the model and text came back

    # The tiny model writes prose, not integers: every item is retried, then counted as unparsed.
    with pytest.warns(UserWarning, match="2 of 2 responses got no parsable score"):
        report = score_responses(ENTRIES[:2], judge, tmp_path / "scores.jsonl", progress=False)
    assert report.scores == [None, None] and report.mean is None
    assert [u["index"] for u in report.unparsed] == [0, 1]
    for item in report.unparsed:
        assert len(item["replies"]) == 2 and all(r.strip() for r in item["replies"])
