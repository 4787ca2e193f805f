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
