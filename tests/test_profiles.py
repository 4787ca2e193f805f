import os
import subprocess
import sys

import pytest

from llmtut import profiles


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


def test_hub_without_network_fails_and_names_tiny():
    code = (
        "from llmtut import profiles\n"
        "try:\n"
        "    profiles.load_causal_lm('masking_base', 'hub')\n"
        "except profiles.HubUnavailableError as e:\n"
        "    print(e)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert "bigscience/bloom-560m" in out.stdout and "PROFILE = 'tiny'" in out.stdout, out.stderr[-2000:]


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
