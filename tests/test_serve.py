"""`llmtut.serve`: a real `transformers serve` on localhost, its request log, and its failures."""

import pytest

from llmtut.completions import CompletionsClient
from llmtut.serve import ServeError, read_request_log, served
from llmtut.world import bases


@pytest.mark.serve
def test_served_model_answers_completions_and_every_request_is_logged(tmp_path):
    log = tmp_path / "requests.jsonl"
    prompts = ['In Spanish, "dog" is', 'In Spanish, "water" is']
    with served(bases.causal_base(progress=False), request_log=log) as base_url:
        client = CompletionsClient(model=str(bases.causal_base(progress=False)), base_url=base_url, max_tokens=4,
                                   max_workers=2, progress=False)
        answers = client.complete(prompts)
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)
    requests = read_request_log(log)
    assert sorted(r["body"]["prompt"] for r in requests) == sorted(prompts)
    assert all(r["path"] == "/v1/completions" for r in requests)


@pytest.mark.serve
def test_a_server_that_cannot_start_is_reported_with_its_log(tmp_path):
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    with pytest.raises(ServeError, match="transformers serve"), served(empty, timeout_s=60):
        pass
