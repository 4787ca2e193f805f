import json
import math

import pytest
import torch
import torch.nn.functional as F
from datasets import Dataset
from jinja2.exceptions import UndefinedError
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM, TrainingArguments

from llmtut.formats import answer_text, format_question
from llmtut.pdss import (
    DECODER_IN,
    DISTILL_TASKS,
    PDSS_TASKS,
    DistillCollator,
    DistillDataset,
    DistillTrainer,
    PDSSCollator,
    PDSSDataset,
    PDSSTrainer,
    build_distill_fields,
    build_fields,
    fit_limits,
    render,
    split_by_question,
)
from llmtut.world import hub

EOS = "<|endoftext|>"
RECORDS = [
    {"question": "Which tool is used to measure temperature?",
     "choices": {"text": ["ruler", "thermometer", "balance", "stopwatch"], "label": ["A", "B", "C", "D"]},
     "answerKey": "B"},
    {"question": "What kind of animal is a whale?",
     "choices": {"text": ["bird", "fish", "mammal", "insect"], "label": ["A", "B", "C", "D"]},
     "answerKey": "C"},
    {"question": "Which part of a plant makes food from sunlight?",
     "choices": {"text": ["root", "stem", "seed", "leaf"], "label": ["A", "B", "C", "D"]},
     "answerKey": "D"},
]
PERTURBED = ["Which device is employed to gauge warmth?", "What sort of creature is a dolphin?",
             "Which section of a shrub creates meals from daylight?"]


def pdss_rows(long_rationale_words: int = 0) -> list[dict]:
    rows = []
    for rec, perturbed in zip(RECORDS, PERTURBED, strict=True):
        question = format_question(rec)
        p_question = format_question({**rec, "question": perturbed})
        clean = f"The answer is {answer_text(rec)} because science says so."
        p_rationale = "Perhaps the answer is something else entirely."
        rows.append(build_fields(question, p_question, p_rationale, clean))
    if long_rationale_words:  # one decoder prompt far longer than the others
        question = format_question(RECORDS[0])
        rationale = " ".join(["because the device measures warmth"] * (long_rationale_words // 5))
        rows[0] = build_fields(question, format_question({**RECORDS[0], "question": PERTURBED[0]}), rationale,
                               "A thermometer measures temperature.")
    return rows


def distill_rows() -> list[dict]:
    return [build_distill_fields(format_question(r), answer_text(r), f"So the answer is {answer_text(r)}.")
            for r in RECORDS]


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer trained on the rows' own text, whose eos is also its pad token."""
    texts = [text for row in pdss_rows(long_rationale_words=50) + distill_rows() for text in row.values()]
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=["<unk>", EOS], show_progress=False))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=EOS, unk_token="<unk>")
    assert fast.eos_token_id == fast.pad_token_id
    return fast


@pytest.fixture(scope="module")
def model(tokenizer) -> Qwen2ForCausalLM:
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1)
    return Qwen2ForCausalLM(config)


def training_args(tmp_path, **kw) -> TrainingArguments:
    defaults = dict(output_dir=str(tmp_path), remove_unused_columns=False, report_to=[], use_cpu=True,
                    save_strategy="no", disable_tqdm=True, per_device_train_batch_size=4, logging_steps=1)
    return TrainingArguments(**{**defaults, **kw})


# ----- fields -----


def test_build_fields_gives_the_four_fields_with_their_parts():
    rec = RECORDS[0]
    fields = build_fields(format_question(rec), "Question: P?\n", "perturbed why", "clean why")
    assert list(fields) == ["encoder_in", "encoder_out", "decoder_in", "decoder_out"]
    assert "Question: Which tool is used to measure temperature?\nChoices:\nA. ruler" in fields["encoder_in"]
    assert fields["encoder_in"].endswith("Perturbed Doc:\n")
    assert fields["encoder_out"] == "Question: P?"
    dec = fields["decoder_in"]
    assert dec.index("Question: P?") < dec.index("perturbed why") < dec.index("measure temperature")
    assert dec.endswith("Recover Rationale:\n")
    assert fields["decoder_out"] == "clean why"
    assert list(build_distill_fields("Q", "A", "R")) == ["predict_in", "predict_out", "explain_in", "explain_out"]


def test_a_missing_template_variable_is_an_error_not_an_empty_string():
    with pytest.raises(UndefinedError, match="perturbed_rationale"):
        render(DECODER_IN, question="Q", perturbed_question="P")
    with pytest.raises(TypeError, match="perturbed_rationale must be a str"):
        build_fields("Q", "P", None, "R")  # e.g. a teacher call that failed


# ----- the dataset -----


def test_labels_mask_exactly_the_prompt_and_keep_the_target_and_eos_when_eos_is_pad(tokenizer):
    rows = pdss_rows()
    ds = PDSSDataset(rows, tokenizer)
    eos = tokenizer.eos_token_id
    for row, item in zip(rows, ds, strict=True):
        for task in PDSS_TASKS:
            prompt = tokenizer.encode(row[f"{task}_in"])
            target = tokenizer.encode(row[f"{task}_out"], add_special_tokens=False)
            assert item[f"{task}_input_ids"] == prompt + target + [eos]
            assert item[f"{task}_labels"] == [-100] * len(prompt) + target + [eos]
            assert item[f"{task}_labels"][-1] == tokenizer.pad_token_id  # the eos == pad label survives
    assert ds.truncation_rate == 0 and ds.target_truncation_rate == 0


def test_limits_from_fit_limits_cut_no_decoder_prompt_and_small_limits_are_counted(tokenizer):
    rows = pdss_rows(long_rationale_words=50)
    limits = fit_limits(rows, tokenizer)
    long_prompt = len(tokenizer.encode(rows[0]["decoder_in"]))
    assert long_prompt > 64  # the source's limit would cut it
    assert limits["max_prompt_len"]["decoder"] == long_prompt
    ds = PDSSDataset(rows, tokenizer, **limits)
    assert ds.truncation_rate == 0 and ds.target_truncation_rate == 0
    assert ds[0]["decoder_input_ids"][:long_prompt] == tokenizer.encode(rows[0]["decoder_in"])

    short = long_prompt - 10  # only row 0's decoder prompt is longer
    with pytest.warns(UserWarning, match="1 of 3 rows had a prompt cut"):
        cut = PDSSDataset(rows, tokenizer, max_prompt_len={"encoder": None, "decoder": short})
    assert cut.truncation_rate == pytest.approx(1 / 3)
    assert cut.truncated_prompts == {"encoder": 0, "decoder": 1}
    assert cut[0]["decoder_labels"][:short] == [-100] * short
    assert cut[0]["decoder_input_ids"][:short] == tokenizer.encode(rows[0]["decoder_in"])[-short:]  # keeps the cue


def test_a_cut_target_keeps_its_eos(tokenizer):
    rows = pdss_rows()
    with pytest.warns(UserWarning, match="3 a target cut"):
        ds = PDSSDataset(rows, tokenizer, max_target_len={"encoder": None, "decoder": 3})
    assert ds.target_truncation_rate == 1 and ds.truncation_rate == 0
    labels = ds[0]["decoder_labels"]
    target = tokenizer.encode(rows[0]["decoder_out"], add_special_tokens=False)
    assert [x for x in labels if x != -100] == target[:2] + [tokenizer.eos_token_id]
    with pytest.raises(ValueError, match="at least 2"):
        PDSSDataset(rows, tokenizer, max_target_len=1)


def test_a_row_with_nothing_to_learn_is_dropped_and_counted(tokenizer):
    rows = pdss_rows()
    # an empty teacher reply, or one that began with a newline and was cut there by stop=["\n"]
    rows[1] = build_fields(format_question(RECORDS[1]), format_question(RECORDS[1]), "Perhaps.", "")
    with pytest.warns(UserWarning, match=r"dropped 1 of 3 rows with an empty target .*rows \[1\]"):
        ds = PDSSDataset(rows, tokenizer, **fit_limits(rows, tokenizer))
    assert (ds.n_dropped, ds.dropped, len(ds)) == (1, [1], 2)
    assert ds.rows == [rows[0], rows[2]]  # the kept rows, one per item
    assert ds[1] == PDSSDataset([rows[2]], tokenizer)[0]
    assert ds.truncation_rate == 0
    with pytest.raises(ValueError, match=r"row 1: decoder_out '' has no tokens"):
        PDSSDataset(rows, tokenizer, drop_empty=False)
    with pytest.raises(ValueError, match="all 1 rows have an empty target"):
        PDSSDataset([rows[1]], tokenizer)


def test_an_empty_recovered_rationale_is_dropped_from_the_distillation_data(tokenizer):
    rows = distill_rows()
    rows[0] = build_distill_fields(format_question(RECORDS[0]), answer_text(RECORDS[0]), " \n")
    with pytest.warns(UserWarning, match="dropped 1 of 3 rows"):
        ds = DistillDataset(rows, tokenizer)
    assert (ds.n_dropped, ds.dropped, ds.rows) == (1, [0], rows[1:])
    clean = DistillDataset(distill_rows(), tokenizer)
    assert (clean.n_dropped, clean.dropped, len(clean)) == (0, [], 3)


def test_a_misspelt_field_names_the_row_the_field_and_the_typo(tokenizer):
    rows = pdss_rows()
    rows[2] = {("docoder_in" if k == "decoder_in" else k): v for k, v in rows[2].items()}
    with pytest.raises(KeyError, match=r"row 2 has no field 'decoder_in'.*'docoder_in' a typo of 'decoder_in'"):
        PDSSDataset(rows, tokenizer)
    with pytest.raises(KeyError, match="row 2"):
        fit_limits(rows, tokenizer)
    with pytest.raises(KeyError, match="predict_in"):  # PDSS rows are not distillation rows
        DistillDataset(pdss_rows(), tokenizer)


# ----- the collator -----


def test_the_collator_pads_each_half_to_its_own_length():
    batch = [
        {"encoder_input_ids": [5, 6, 7], "encoder_labels": [-100, 6, 2],
         "decoder_input_ids": [8, 9], "decoder_labels": [-100, 2]},
        {"encoder_input_ids": [5, 2], "encoder_labels": [-100, 2],
         "decoder_input_ids": [8, 9, 10, 11, 2], "decoder_labels": [-100, -100, 10, 11, 2]},
    ]
    out = PDSSCollator(pad_token_id=2)(batch)
    assert sorted(out) == sorted(f"{t}_{k}" for t in PDSS_TASKS for k in ("input_ids", "attention_mask", "labels"))
    assert out["encoder_input_ids"].tolist() == [[5, 6, 7], [5, 2, 2]]
    assert out["encoder_attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert out["encoder_labels"].tolist() == [[-100, 6, 2], [-100, 2, -100]]  # the eos stays, the pad does not
    assert out["decoder_input_ids"].tolist() == [[8, 9, 2, 2, 2], [8, 9, 10, 11, 2]]
    assert out["decoder_attention_mask"].tolist() == [[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]
    assert out["decoder_labels"].tolist() == [[-100, 2, -100, -100, -100], [-100, -100, 10, 11, 2]]
    assert all(t.dtype == torch.long for t in out.values())
    with pytest.raises(KeyError, match="predict_input_ids"):
        DistillCollator(pad_token_id=2)(batch)


# ----- the trainer -----


def mean_ce(model, batch, task):
    """The mean next-token cross-entropy over the task's non-masked labels, by hand."""
    logits = model(input_ids=batch[f"{task}_input_ids"], attention_mask=batch[f"{task}_attention_mask"]).logits
    labels = batch[f"{task}_labels"]
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), ignore_index=-100)


@pytest.mark.parametrize(
    ("dataset_cls", "trainer_cls", "rows"),
    [(PDSSDataset, PDSSTrainer, pdss_rows), (DistillDataset, DistillTrainer, distill_rows)],
)
def test_the_loss_is_alpha_weighted_over_the_two_tasks(tmp_path, tokenizer, model, dataset_cls, trainer_cls, rows):
    ds = dataset_cls(rows(), tokenizer)
    trainer = trainer_cls(model=model, args=training_args(tmp_path), train_dataset=ds, processing_class=tokenizer)
    batch = trainer.data_collator([ds[i] for i in range(len(ds))])
    first, second = trainer_cls.TASKS
    with torch.no_grad():
        l_first, l_second = mean_ce(model, batch, first), mean_ce(model, batch, second)
        assert not torch.isclose(l_first, l_second)
        for alpha in (0.0, 0.5, 1.0):
            trainer.alpha = alpha
            expected = alpha * l_first + (1 - alpha) * l_second
            assert trainer.compute_loss(model, batch).item() == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(ValueError, match=r"alpha .* in \[0, 1\]"):
        trainer.alpha = 1.5


def test_the_trainer_refuses_to_drop_the_batch_columns(tmp_path, tokenizer, model):
    ds = PDSSDataset(pdss_rows(), tokenizer)
    with pytest.raises(ValueError, match="remove_unused_columns=False"):
        PDSSTrainer(model=model, args=training_args(tmp_path, remove_unused_columns=True), train_dataset=ds,
                    processing_class=tokenizer)


def test_three_steps_train_and_log_both_parts(tmp_path, tokenizer):
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1)
    model = Qwen2ForCausalLM(config)
    rows = pdss_rows()
    ds = PDSSDataset(rows, tokenizer, **fit_limits(rows, tokenizer))
    args = training_args(tmp_path, max_steps=3, learning_rate=1e-2, lr_scheduler_type="constant", seed=0)
    trainer = PDSSTrainer(model=model, args=args, train_dataset=ds, processing_class=tokenizer,
                          data_collator=PDSSCollator(tokenizer.pad_token_id), alpha=0.3)
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert len(logs) == 3
    for h in logs:
        assert math.isfinite(h["loss"])
        assert h["loss"] == pytest.approx(0.3 * h["encoder_loss"] + 0.7 * h["decoder_loss"], abs=1e-3)
    assert logs[-1]["loss"] < logs[0]["loss"]  # one batch, seen three times
    assert DISTILL_TASKS == DistillTrainer.TASKS
    assert math.isfinite(trainer.evaluate(ds)["eval_loss"])


@pytest.mark.parametrize("max_steps", [1, 3, 5])
def test_a_run_shorter_than_logging_steps_still_logs_its_last_step(tmp_path, tokenizer, max_steps):
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1)
    model = Qwen2ForCausalLM(config)
    ds = PDSSDataset(pdss_rows(), tokenizer)
    args = training_args(tmp_path, max_steps=max_steps, logging_steps=4, learning_rate=1e-2, seed=0)
    trainer = PDSSTrainer(model=model, args=args, train_dataset=ds, processing_class=tokenizer, alpha=0.5)
    trainer.train()
    history = trainer.loss_history()
    assert list(history["step"]) == sorted({*range(4, max_steps + 1, 4), max_steps})  # never twice
    assert list(history.columns) == ["step", "epoch", "loss", "encoder_loss", "decoder_loss"]
    table = history[["epoch", "loss", "encoder_loss", "decoder_loss"]].round(3)  # as the chapter shows it
    assert len(table) >= 1 and table.notna().all().all()


def test_a_task_of_weight_zero_is_not_run_and_not_logged(tmp_path, tokenizer):
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1)
    model = Qwen2ForCausalLM(config)
    calls = []
    model.register_forward_pre_hook(lambda module, args, kwargs: calls.append(kwargs["input_ids"].shape),
                                    with_kwargs=True)
    ds = DistillDataset(distill_rows(), tokenizer)
    args = training_args(tmp_path, max_steps=2, learning_rate=1e-2, seed=0, per_device_train_batch_size=8)
    trainer = DistillTrainer(model=model, args=args, train_dataset=ds, processing_class=tokenizer, alpha=1.0)
    trainer.train()
    assert len(calls) == 2  # one forward pass per step: the predict half only
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert all("explain_loss" not in h and h["loss"] == pytest.approx(h["predict_loss"], abs=1e-4) for h in logs)
    history = trainer.loss_history()
    assert len(history) == len(logs) and history["explain_loss"].isna().all()  # still a column, of NaN
    assert list(history["predict_loss"]) == pytest.approx([h["predict_loss"] for h in logs])


HUB_ARC = hub.default_samples() / "allenai--ai2_arc" / "ARC-Easy" / "train.jsonl"


def _arc_rows() -> list[dict]:
    """ARC-Easy's first half (`train[:50%]`): the real rows when ../shared/hub-samples is there, else rows of
    the same layout in which some question texts repeat, as ARC's do."""
    if HUB_ARC.is_file():
        rows = [json.loads(line) for line in HUB_ARC.read_text().splitlines()]
        return rows[: (len(rows) + 1) // 2]  # datasets' train[:50%] rounds up: 1126 of 2251
    choices = {"text": ["a", "b", "c", "d"], "label": ["A", "B", "C", "D"]}
    return [{"id": f"q{i}", "question": f"Question {i % 700}?", "choices": choices, "answerKey": "A"}
            for i in range(1126)]


@pytest.mark.parametrize("seed", range(100))
def test_the_hub_split_never_tests_a_trained_question(seed):
    records = [r for r in Dataset.from_list(_arc_rows()).shuffle(seed=seed)]  # as profiles.load_science_questions
    test, train, public = split_by_question(records, 100, 150, 150)
    assert (len(test), len(train), len(public)) == (100, 150, 150)
    texts = [{r["question"] for r in group} for group in (test, train, public)]
    assert not texts[0] & texts[1] and not texts[0] & texts[2] and not texts[1] & texts[2]
    assert test == records[:100]


def test_split_by_question_says_when_the_records_run_out():
    records = [{"question": f"q{i % 3}"} for i in range(10)]  # three distinct texts
    with pytest.raises(ValueError, match="fill only 0 of 1"):
        split_by_question(records, 2, 1, 1)  # the first two records take q0 and q1, then only q2 is left
