"""The distillation chapter's tiny teacher and student base (`llmtut.world.pdss_models`)."""

import copy

import pytest
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from llmtut.formats import answer_text, teacher_prompt
from llmtut.world import pdss_models
from llmtut.world.cache import world_card


def test_the_teacher_prompt_is_the_question_then_the_answer_cue():
    record = pdss_models.questions()[0]
    prompt = teacher_prompt(record)
    assert prompt.startswith("Question: ") and prompt.endswith("\nAnswer:")
    assert answer_text(record) in record["rationale"]


@pytest.fixture(scope="module")
def loaded():
    out = {}
    for role in ("teacher", "student"):
        path = getattr(pdss_models, role)(progress=False)
        out[role] = (AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path), path)
    return out


@pytest.mark.slow
def test_the_teacher_answers_the_questions_and_the_student_base_does_not(loaded):
    sample = pdss_models.questions()[::20]
    teacher_model, teacher_tok, teacher_path = loaded["teacher"]
    assert type(teacher_model).__name__ == "Qwen2ForCausalLM" and teacher_tok.chat_template
    assert world_card(teacher_path)["accuracy_sample"] >= 0.9
    teacher = pdss_models.answer_accuracy(teacher_model, teacher_tok, sample)
    student = pdss_models.answer_accuracy(*loaded["student"][:2], sample)
    assert teacher >= 0.9 and student < 0.5, (teacher, student)


def test_a_teacher_build_is_deterministic(tmp_path, monkeypatch):
    recipe = copy.deepcopy(pdss_models.PDSS_RECIPE)
    recipe["data"] |= {"n_questions": 40, "prose_docs": 10}
    recipe["teacher"] |= {"hidden_size": 32, "num_layers": 1, "epochs": 1}
    weights = []
    for run in ("a", "b"):
        monkeypatch.setenv("LLMTUT_CACHE", str(tmp_path / run))
        weights.append(load_file(pdss_models.teacher(recipe, progress=False) / "model.safetensors"))
    assert weights[0].keys() == weights[1].keys()
    assert all((weights[0][k] == weights[1][k]).all() for k in weights[0])
