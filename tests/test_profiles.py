import os
import subprocess
import sys

import pytest

from llmtut import profiles
from llmtut.instructions import load_records, write_records
from llmtut.world import tasks

WITH_INPUT = {"instruction": "Correct the spelling of the word.", "input": "baer", "output": "bear"}


def test_default_profile_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("LLMTUT_PROFILE", raising=False)
    assert profiles.default_profile() == "hub"
    monkeypatch.setenv("LLMTUT_PROFILE", "tiny")
    assert profiles.default_profile() == "tiny"
    monkeypatch.setenv("LLMTUT_PROFILE", "small")
    with pytest.raises(ValueError, match="hub.*tiny"):
        profiles.default_profile()


def test_roles_resolve_to_a_hub_id_or_a_local_build():
    assert profiles.resolve("masking_base", "hub") == "bigscience/bloom-560m"
    assert os.path.isdir(profiles.resolve("masking_base", "tiny"))
    with pytest.raises(KeyError, match="known roles"):
        profiles.resolve("no_such_role", "tiny")


@pytest.mark.parametrize(
    ("call", "names"),
    [
        ("profiles.load_causal_lm('masking_base', 'hub')", "bigscience/bloom-560m"),
        ("profiles.load_dialogue_dataset('hub')", "knkarthick/dialogsum"),
        ("profiles.load_science_questions('hub', seed=0)", "allenai/ai2_arc"),
    ],
)
def test_hub_without_network_fails_with_one_message_that_names_tiny(call, names):
    code = f"from llmtut import profiles\ntry:\n    {call}\nexcept profiles.HubUnavailableError as e:\n    print(e)\n"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert names in out.stdout, out.stderr[-2000:]
    assert "run this chapter offline with PROFILE = 'tiny' (papermill: -p PROFILE tiny" in out.stdout


def test_a_tokenizer_without_pad_token_is_refused(tmp_path, monkeypatch):
    model, tokenizer = profiles.load_causal_lm("masking_base", "tiny")
    tokenizer.pad_token = None
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    monkeypatch.setitem(profiles.ROLES, "no_pad", profiles.Role(hub="x/y", tiny=lambda: tmp_path))
    with pytest.raises(ValueError, match="no pad token.*pad_token = tokenizer.eos_token"):
        profiles.load_causal_lm("no_pad", "tiny")


def test_the_model_comes_back_in_eval_mode_on_the_device():
    model, _ = profiles.load_causal_lm("masking_base", "tiny", device="cpu")
    assert not model.training and model.device.type == "cpu"


def test_gpt2_has_no_pad_token_until_asked_to_pad_with_eos():
    with pytest.raises(ValueError, match="no pad token.*pad_with_eos=True"):
        profiles.load_causal_lm("instruction_base", "tiny")
    model, tokenizer = profiles.load_causal_lm("instruction_base", "tiny", pad_with_eos=True)
    assert tokenizer.pad_token_id == tokenizer.eos_token_id
    assert type(model).__name__ == "GPT2LMHeadModel"
    assert profiles.resolve("instruction_base", "hub") == "openai-community/gpt2-medium"


def test_tiny_profile_writes_then_loads_back(tmp_path):
    data = profiles.load_instruction_data(tmp_path / "instruction-data.json", "tiny", n=100, seed=3)
    assert data == tasks.tiny_instruction_records(100, seed=3)
    assert load_records(tmp_path / "instruction-data.json") == data


def test_download_failure_names_the_url_and_tiny(tmp_path):
    url = "http://127.0.0.1:9/x.json"  # nothing listens on the discard port: no real network
    path = tmp_path / "instruction-data.json"
    with pytest.raises(profiles.HubUnavailableError, match=r"127\.0\.0\.1:9/x\.json.*PROFILE = 'tiny'"):
        profiles.download_instruction_data(path, url=url, timeout=5)
    assert not path.exists() and not list(tmp_path.iterdir())  # no partial file left to trust


def test_download_uses_an_existing_file_without_network(tmp_path):
    path = write_records([WITH_INPUT], tmp_path / "instruction-data.json")
    assert profiles.download_instruction_data(path, url="http://127.0.0.1:9/x.json") == [WITH_INPUT]


# --- prompt styles -----------------------------------------------------------------------------
