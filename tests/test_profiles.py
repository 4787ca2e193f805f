import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from datasets import Dataset

from llmtut import profiles
from llmtut.instructions import load_records, write_records
from llmtut.world import hub, tasks

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
@pytest.mark.slow
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


def test_half_precision_checkpoints_load_in_fp32_for_training(tmp_path, monkeypatch):
    model, tokenizer = profiles.load_causal_lm("masking_base", "tiny")
    model.to(torch.float16).save_pretrained(tmp_path)  # as bloom-560m on the Hub
    tokenizer.save_pretrained(tmp_path)
    monkeypatch.setitem(profiles.ROLES, "fp16_checkpoint", profiles.Role(hub="x/y", tiny=lambda: tmp_path))
    assert profiles.load_causal_lm("fp16_checkpoint", "tiny")[0].dtype == torch.float32
    assert profiles.load_causal_lm("fp16_checkpoint", "tiny", dtype=torch.float16)[0].dtype == torch.float16


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


# --- DialogSum in the Hub's layout: the real rows when ../shared/hub-samples is there, else generated ones ---

HUB_SAMPLES = hub.default_samples()


def _generated_dialogsum(folder: Path) -> None:
    """DialogSum's layout: id, dialogue, summary, topic; test rows repeat each dialogue for 3 summaries."""

    def dialogue(i: int, chars: int) -> str:
        text = f"#Person1#: Dialogue {i}. " + "x" * chars
        return text[:chars]

    lengths = [150, 200, 201, 600, 1000, 1001]  # around the source's bounds: 200 < len <= 1000
    train = [{"id": f"train_{i}", "dialogue": dialogue(i, n), "summary": f"s{i}", "topic": "t"}
             for i, n in enumerate(lengths)]
    test = [{"id": f"test_{i}_{k}", "dialogue": dialogue(i, n), "summary": f"s{i}.{k}", "topic": "t"}
            for i, n in enumerate(lengths) for k in (1, 2, 3)]
    for name, rows in (("train", train), ("validation", train[:2]), ("test", test)):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture
def dialogsum_here(tmp_path, monkeypatch):
    """A folder named like the Hub id in the working directory, which `load_dataset` resolves first."""
    folder = tmp_path / "knkarthick" / "dialogsum"
    folder.mkdir(parents=True)
    real = HUB_SAMPLES / "knkarthick--dialogsum"
    if real.is_dir():
        for f in real.glob("*.jsonl"):
            (folder / f.name).symlink_to(f)
    else:
        _generated_dialogsum(folder)
    monkeypatch.chdir(tmp_path)
    return real.is_dir()


def test_hub_dialogsum_keeps_the_sources_lengths_and_counts_each_test_dialogue_once(dialogsum_here):
    data = profiles.load_dialogue_dataset("hub")
    for split in ("train", "test"):
        assert all(200 < len(d) <= 1000 for d in data[split]["dialogue"])
    test = data["test"]
    assert len(set(test["dialogue"])) == len(test)  # distinct dialogues, not one row per reference
    assert all(len(refs) == 3 and refs[0] == s for refs, s in zip(test["references"], test["summary"], strict=True))
    if dialogsum_here:  # the real rows: the figures in ../shared/hub-samples/README.md
        assert len(data["train"]) == 10022
        assert {i.rsplit("_", 1)[1] for i in test["id"]} == {"1"}
    else:
        assert len(data["train"]) == 3 and len(test) == 3  # 201, 600 and 1000 characters


def test_distinct_dialogues_groups_the_references_in_order():
    rows = Dataset.from_list([{"dialogue": d, "summary": s} for d, s in
                              [("a", "a1"), ("b", "b1"), ("a", "a2"), ("c", "c1"), ("b", "b2")]])
    grouped = profiles.distinct_dialogues(rows)
    assert grouped["dialogue"] == ["a", "b", "c"]
    assert grouped["references"] == [["a1", "a2"], ["b1", "b2"], ["c1"]]
    assert grouped["summary"] == ["a1", "b1", "c1"]
