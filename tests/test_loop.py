from functools import partial

import pytest
import torch
from torch.utils.data import DataLoader
from transformers import GPT2Config, GPT2LMHeadModel

from llmtut.instructions import collate
from llmtut.loop import batch_loss, loader_loss, train_with_eval

PAD = 15


def tiny_gpt2(seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(vocab_size=16, n_positions=32, n_embd=16, n_layer=1, n_head=2))


# Sequences "count up from a start": learnable in a few dozen steps.
ITEMS = [list(range(s, s + n)) for s in range(4) for n in (3, 5)]


def make_loader(shuffle: bool, seed: int = 0) -> DataLoader:
    return DataLoader(ITEMS, batch_size=4, shuffle=shuffle, collate_fn=partial(collate, pad_token_id=PAD),
                      generator=torch.Generator().manual_seed(seed))


def test_batch_loss_skips_ignored_targets():
    model = tiny_gpt2().eval()  # no dropout: two forward passes agree
    inputs, targets = collate([[1, 2, 3], [4]], pad_token_id=PAD)
    logits = model(inputs).logits
    keep = targets != -100
    manual = torch.nn.functional.cross_entropy(logits[keep], targets[keep])
    assert torch.allclose(batch_loss(model, inputs, targets), manual)
    assert keep.sum() < targets.numel()  # the test exercised some ignored targets


def test_loader_loss_averages_batches_and_restores_train_mode():
    model = tiny_gpt2().train()
    loader = make_loader(shuffle=False)
    per_batch = [batch_loss(model.eval(), x, y).item() for x, y in loader]
    model.train()
    assert loader_loss(model, loader) == pytest.approx(sum(per_batch) / len(per_batch))
    assert loader_loss(model, loader, num_batches=1) == pytest.approx(per_batch[0])
    assert model.training
    with pytest.raises(ValueError, match="no batches"):
        loader_loss(model, loader, num_batches=0)


def run(seed: int):
    model = tiny_gpt2()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    return train_with_eval(model, make_loader(True, seed), make_loader(False), opt, num_epochs=15, eval_freq=4,
                           eval_iter=None, seed=seed, progress=False)


def test_training_lowers_the_validation_loss_and_is_reproducible():
    history = run(seed=0)
    steps_total = 15 * 2
    assert history.steps[0] == 0 and history.steps[-1] == steps_total  # start and end points are measured
    assert history.steps[1:-1] == list(range(4, steps_total, 4))
    assert history.val_loss[-1] < 0.5 * history.val_loss[0]
    assert history.tokens_seen[-1] > history.tokens_seen[1] > 0
    assert run(seed=0).val_loss == history.val_loss
    assert run(seed=1).train_loss != history.train_loss  # another shuffle order
