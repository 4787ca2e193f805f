from transformers import TrainerControl, TrainerState, TrainingArguments

from llmtut.training import StopWhenLearned, loss_history


def epoch_end(cb, model):
    args = TrainingArguments(output_dir="unused", num_train_epochs=3, report_to=[])
    control = TrainerControl()
    cb.on_train_begin(args, TrainerState(), control)
    cb.on_epoch_end(args, TrainerState(), control, model=model)
    cb.on_train_end(args, TrainerState(), control)
    return control


def test_stops_when_every_answer_is_exact(causal_base):
    model, tokenizer = causal_base
    cb = StopWhenLearned(tokenizer, ['In Spanish, "good" is', 'In Spanish, "dog" is'], ["bueno", "perro"], max_new_tokens=1)
    assert epoch_end(cb, model).should_training_stop
    assert cb.epochs_to_learn == 1 and cb.correct_per_epoch == [2]


def test_keeps_training_while_an_answer_is_wrong(causal_base):
    model, tokenizer = causal_base
    cb = StopWhenLearned(tokenizer, ['In Spanish, "good" is', 'In Spanish, "dog" is'], ["bueno", "gato"], max_new_tokens=1)
    assert not epoch_end(cb, model).should_training_stop
    assert cb.epochs_to_learn is None and cb.correct_per_epoch == [1]


def test_loss_history_keeps_the_training_logs_only():
    logs = [{"loss": 2.0, "step": 1, "epoch": 0.5}, {"train_runtime": 1.0, "step": 2, "epoch": 1.0}]
    df = loss_history(logs)
    assert df.to_dict("records") == [{"step": 1, "epoch": 0.5, "loss": 2.0}]


def test_train_until_learned_stops_early_and_reports(causal_base, tmp_path):
    import torch
    from datasets import Dataset
    from transformers import DataCollatorForSeq2Seq, Trainer

    from llmtut.training import plot_learning, small_run_args, train_until_learned, with_lora
    from llmtut.world import bases

    _, tokenizer = causal_base
    torch.manual_seed(0)
    model, _ = bases.load_base("causal-base")
    model = with_lora(model, 4, ["query_key_value"])
    assert 0 < model.get_nb_trainable_parameters()[0] < 0.1 * model.get_nb_trainable_parameters()[1]
    prompt = 'In Spanish, "good" is'
    ids = tokenizer(f"{prompt} gato", add_special_tokens=False)["input_ids"]  # teach a wrong word
    labels = [-100] * (len(ids) - 1) + ids[-1:]
    trainer = Trainer(
        model=model,
        args=TrainingArguments(output_dir=str(tmp_path), **small_run_args(30, 1, 5e-3, 0, "cpu")),
        train_dataset=Dataset.from_list([{"input_ids": ids, "labels": labels}]),
        data_collator=DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100),
    )
    run = train_until_learned(trainer, StopWhenLearned(tokenizer, [prompt], ["gato"], max_new_tokens=1))
    assert run.epochs_to_learn is not None and run.epochs_to_learn < 30  # stopped early
    assert run.final_correct == 1 and len(run.correct_per_epoch) == run.epochs_to_learn
    assert len(run.losses) == run.epochs_to_learn and run.train_runtime_s > 0
    fig = plot_learning({"gato": {"losses": run.losses, "correct_per_epoch": run.correct_per_epoch}}, n_answers=1)
    assert len(fig.axes) == 2 and len(fig.axes[1].lines[0].get_xdata()) == run.epochs_to_learn
