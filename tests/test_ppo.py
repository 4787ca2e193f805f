import math

import pytest
import torch
from peft import LoraConfig, get_peft_model
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

from llmtut.ppo import (
    AdaptiveKLController,
    FixedKLController,
    PPOConfig,
    Seq2SeqPolicyWithValueHead,
    Seq2SeqPPOTrainer,
    clipped_policy_loss,
    clipped_value_loss,
    compute_gae,
    kl_penalty_rewards,
    logprobs_from_logits,
    masked_mean,
    masked_var,
    masked_whiten,
)

VOCAB, PAD, EOS = 24, 0, 1


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {"<pad>": PAD, "</s>": EOS, "<unk>": 2, **{f"w{i}": i for i in range(3, VOCAB)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def tiny_peft_t5(seed: int = 0):
    """A random one-layer T5 with dropout (off in PPO) and a fresh LoRA adapter (B = 0) on q and v."""
    torch.manual_seed(seed)
    config = T5Config(vocab_size=VOCAB, d_model=32, d_ff=64, d_kv=16, num_layers=1, num_heads=2,
                      dropout_rate=0.1, decoder_start_token_id=PAD)
    lora = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.1, target_modules=["q", "v"], task_type="SEQ_2_SEQ_LM")
    return get_peft_model(T5ForConditionalGeneration(config), lora)


def random_queries(n: int, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(3, VOCAB, (int(torch.randint(2, 6, (), generator=g)),), generator=g) for _ in range(n)]


SAMPLE = dict(do_sample=True, top_k=0, top_p=1.0)


def test_gae_by_hand():
    gamma, lam = 0.9, 0.8  # gamma * lam = 0.72
    rewards = torch.tensor([[1.0, 0.0, 2.0], [0.5, 1.0, 99.0]])
    values = torch.tensor([[0.5, 1.0, -1.0], [0.2, 0.4, 99.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])  # row 2 has 2 tokens, then padding
    advantages, returns = compute_gae(rewards, values, mask, gamma, lam)
    # row 1: d2 = 2 + 0 - (-1) = 3;   d1 = 0 + 0.9 * -1 - 1 = -1.9;  d0 = 1 + 0.9 * 1 - 0.5 = 1.4
    #        A2 = 3;  A1 = -1.9 + 0.72 * 3 = 0.26;  A0 = 1.4 + 0.72 * 0.26 = 1.5872
    # row 2: d1 = 1 + 0 - 0.4 = 0.6;  d0 = 0.5 + 0.9 * 0.4 - 0.2 = 0.66;  A0 = 0.66 + 0.72 * 0.6 = 1.092
    expected = torch.tensor([[1.5872, 0.26, 3.0], [1.092, 0.6, 0.0]])
    torch.testing.assert_close(advantages, expected)
    torch.testing.assert_close(returns, torch.tensor([[2.0872, 1.26, 2.0], [1.292, 1.0, 0.0]]))


def test_clipped_policy_loss_by_hand():
    ratio = torch.tensor([[1.5, 0.5, 1.1, 0.5, 3.0]])
    advantages = torch.tensor([[1.0, -1.0, -2.0, 2.0, 1.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0]])  # the last token is padding
    loss, clipfrac = clipped_policy_loss(ratio.log(), torch.zeros_like(ratio), advantages, mask, cliprange=0.2)
    # per token max(-A r, -A clip(r)): max(-1.5, -1.2) = -1.2 (clipped); max(0.5, 0.8) = 0.8 (clipped);
    # max(2.2, 2.2) = 2.2 (inside the range); max(-1.0, -1.6) = -1.0 (outside, but unclipped is larger)
    assert loss.item() == pytest.approx((-1.2 + 0.8 + 2.2 - 1.0) / 4)
    assert clipfrac.item() == pytest.approx(2 / 4)


def test_clipped_value_loss_by_hand():
    old = torch.tensor([[0.0, 0.0, 1.0]])
    values = torch.tensor([[0.5, -0.1, 1.5]])
    returns = torch.tensor([[1.0, 0.0, 0.0]])
    loss, clipfrac = clipped_value_loss(values, old, returns, torch.ones_like(old), cliprange_value=0.2)
    # clipped values 0.2, -0.1, 1.2: max(0.25, 0.64) = 0.64 (clipped); 0.01; max(2.25, 1.44) = 2.25
    assert loss.item() == pytest.approx(0.5 * (0.64 + 0.01 + 2.25) / 3)
    assert clipfrac.item() == pytest.approx(1 / 3)


def test_masked_statistics_ignore_padding():
    x = torch.tensor([[1.0, 2.0, 3.0, 100.0], [5.0, 7.0, -50.0, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    valid = torch.tensor([1.0, 2.0, 3.0, 5.0, 7.0])
    assert masked_mean(x, mask).item() == pytest.approx(valid.mean().item())
    assert masked_var(x, mask).item() == pytest.approx(valid.var().item())
    white = masked_whiten(x, mask)
    assert white[mask.bool()].mean().item() == pytest.approx(0.0, abs=1e-6)
    assert white[mask.bool()].std().item() == pytest.approx(1.0, abs=1e-4)
    assert (white[~mask.bool()] == 0).all()


def test_logprobs_and_kl_penalty_rewards():
    logits = torch.randn(2, 3, 5, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([[1, 4, 0], [2, 2, 3]])
    logp = logprobs_from_logits(logits, labels)
    assert logp[1, 2].item() == pytest.approx(torch.log_softmax(logits[1, 2], -1)[3].item())
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    ref = logp - torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
    rewards, kl = kl_penalty_rewards(logp, ref, torch.tensor([10.0, 20.0]), mask, kl_coef=0.5)
    torch.testing.assert_close(kl, torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.0, 0.0]]))
    # the score lands on each row's last token: position 2 in row 1, position 0 in row 2
    torch.testing.assert_close(rewards, torch.tensor([[-0.05, -0.1, 10 - 0.15], [20 - 0.2, 0.0, 0.0]]))


def test_kl_controllers():
    ctl = AdaptiveKLController(0.2, target=6.0, horizon=10000)
    ctl.update(12.0, n_steps=16)  # proportional error 1.0, clipped to 0.2
    assert ctl.value == pytest.approx(0.2 * (1 + 0.2 * 16 / 10000))
    before = ctl.value
    ctl.update(5.4, n_steps=16)  # error -0.1: below the target, the weight goes down
    assert ctl.value == pytest.approx(before * (1 - 0.1 * 16 / 10000))
    fixed = FixedKLController(0.2)
    fixed.update(100.0, n_steps=16)
    assert fixed.value == 0.2


def test_config_validation_says_what_to_change():
    with pytest.raises(ValueError, match=r"multiple of mini_batch_size.*mini_batch_size=2"):
        PPOConfig(batch_size=10, mini_batch_size=4)
    with pytest.raises(ValueError, match="cliprange must be > 0"):
        PPOConfig(cliprange=0)
    with pytest.raises(ValueError, match=r"lam must lie in \[0, 1\]"):
        PPOConfig(lam=1.5)


def test_policy_wrapper_trains_only_adapter_and_value_head():
    policy = Seq2SeqPolicyWithValueHead(tiny_peft_t5())
    trainable = [name for name, p in policy.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name or name.startswith("value_head.") for name in trainable)
    assert sum(name.startswith("value_head.") for name in trainable) == 2
    logits, values = policy(torch.tensor([[5, 6, 7]]), torch.ones(1, 3, dtype=torch.long),
                            torch.tensor([[PAD, 8]]), torch.ones(1, 2, dtype=torch.long))
    assert logits.shape == (1, 2, VOCAB) and values.shape == (1, 2)
    assert (values == 0).all()  # the value head starts at zero
    with pytest.raises(TypeError, match="PeftModel"):
        Seq2SeqPolicyWithValueHead(tiny_peft_t5().get_base_model())


def test_generate_strips_start_token_and_stops_at_eos():
    trainer = Seq2SeqPPOTrainer(PPOConfig(batch_size=8, mini_batch_size=4), tiny_peft_t5(), tiny_tokenizer())
    queries = random_queries(8, seed=1)
    torch.manual_seed(3)
    responses = trainer.generate(queries, max_new_tokens=20, **SAMPLE)
    torch.manual_seed(3)
    assert all(torch.equal(a, b) for a, b in zip(responses, trainer.generate(queries, max_new_tokens=20, **SAMPLE),
                                                 strict=True))
    # the same sampling straight from the model: our responses are its rows minus the start token, cut at eos
    padded = torch.nn.utils.rnn.pad_sequence(queries, batch_first=True, padding_value=PAD)
    torch.manual_seed(3)
    raw = trainer.policy.model.generate(input_ids=padded, attention_mask=(padded != PAD).long(), max_new_tokens=20,
                                        decoder_start_token_id=PAD, pad_token_id=PAD, **SAMPLE)
    assert (raw[:, 0] == PAD).all()
    ended = 0
    for response, row in zip(responses, raw, strict=True):
        assert torch.equal(response, row[1: 1 + len(response)])
        assert (response[:-1] != EOS).all()
        if response[-1] == EOS:
            ended += 1
        else:
            assert len(response) == 20
    assert ended > 0  # the test saw responses cut at eos


def test_rollouts_with_the_chapters_settings_ignore_the_models_generation_config(monkeypatch):
    # Chapter 05 samples its PPO rollouts with detox.generation_settings(True): every sampling setting is stated,
    # so a summarizer whose generation config says otherwise (Qwen2.5-Instruct-like, with beams) cannot change them.
    from transformers.generation.utils import GenerationMixin

    from llmtut.detox import generation_settings

    seen, prepare = [], GenerationMixin._prepare_generation_config

    def spy(self, generation_config, **kwargs):
        config, model_kwargs = prepare(self, generation_config, **kwargs)
        seen.append(config)
        return config, model_kwargs

    monkeypatch.setattr(GenerationMixin, "_prepare_generation_config", spy)
    model = tiny_peft_t5()
    hostile = dict(do_sample=True, temperature=0.7, top_k=20, top_p=0.8, repetition_penalty=1.1, num_beams=3)
    for name, value in hostile.items():
        setattr(model.get_base_model().generation_config, name, value)
    trainer = Seq2SeqPPOTrainer(PPOConfig(batch_size=4, mini_batch_size=2), model, tiny_tokenizer())
    queries = random_queries(4, seed=2)
    trainer.generate(queries, max_new_tokens=3, do_sample=True)
    assert (seen[-1].temperature, seen[-1].top_k, seen[-1].num_beams) == (0.7, 20, 3)  # left unset: the model's
    responses = trainer.generate(queries, max_new_tokens=3, **generation_settings(do_sample=True))
    assert len(responses) == 4
    config = seen[-1]
    assert (config.do_sample, config.num_beams, config.temperature, config.top_k, config.top_p,
            config.repetition_penalty) == (True, 1, 1.0, 0, 1.0, 1.0)


def test_step_input_validation():
    trainer = Seq2SeqPPOTrainer(PPOConfig(batch_size=2, mini_batch_size=1), tiny_peft_t5(), tiny_tokenizer())
    q, r = [torch.tensor([5, 6])] * 2, [torch.tensor([7, EOS])] * 2
    with pytest.raises(ValueError, match="got 3 queries but PPOConfig.batch_size is 2"):
        trainer.step(q + q[:1], r, [torch.tensor(1.0)] * 2)
    with pytest.raises(ValueError, match="response 1 has shape"):
        trainer.step(q, [r[0], torch.tensor([], dtype=torch.long)], [torch.tensor(1.0)] * 2)
    with pytest.raises(ValueError, match="one scalar reward per response"):
        trainer.step(q, r, torch.ones(2, 2))


def test_kl_is_exactly_zero_before_the_first_update_and_only_the_adapter_learns():
    model = tiny_peft_t5()
    config = PPOConfig(batch_size=4, mini_batch_size=2, ppo_epochs=2, learning_rate=1e-2)
    trainer = Seq2SeqPPOTrainer(config, model, tiny_tokenizer())
    q_base = model.get_base_model().encoder.block[0].layer[0].SelfAttention.q.base_layer.weight.detach().clone()
    shared = model.get_base_model().shared.weight.detach().clone()
    torch.manual_seed(0)
    queries = random_queries(4, seed=2)
    kls = []
    for i in range(4):
        responses = trainer.generate(queries, max_new_tokens=4, **SAMPLE)
        scores = torch.randn(4, generator=torch.Generator().manual_seed(i))
        stats = trainer.step(queries, responses, scores)
        kls.append(stats["objective/kl"])
    assert kls[0] == 0.0  # dropout is off: a fresh adapter (B = 0) makes policy == reference exactly
    assert all(isinstance(v, float) and math.isfinite(v) for v in stats.values())
    # later steps measure a policy that has moved; the sampled estimate can be negative, the exact KL cannot
    assert all(kl != 0.0 for kl in kls[1:])
    batch = trainer._batch(queries, responses)
    args = [batch[k] for k in ("input_ids", "attention_mask", "decoder_input_ids", "mask")]
    with torch.no_grad():
        logp = trainer.policy(*args)[0].log_softmax(-1)
        with trainer.policy.reference():
            ref_logp = trainer.policy(*args)[0].log_softmax(-1)
    exact_kl = (logp.exp() * (logp - ref_logp)).sum(-1)
    assert masked_mean(exact_kl, batch["mask"]).item() > 1e-4
    base = model.get_base_model()
    assert torch.equal(base.encoder.block[0].layer[0].SelfAttention.q.base_layer.weight, q_base)
    assert torch.equal(base.shared.weight, shared)
    assert base.encoder.block[0].layer[0].SelfAttention.q.lora_B["default"].weight.abs().sum() > 0


def run_steps(seed: int, steps: int = 2) -> list[dict[str, float]]:
    trainer = Seq2SeqPPOTrainer(PPOConfig(batch_size=4, mini_batch_size=2, learning_rate=1e-2, seed=seed),
                                tiny_peft_t5(), tiny_tokenizer())
    queries, out = random_queries(4, seed=5), []
    torch.manual_seed(7)
    for _ in range(steps):
        responses = trainer.generate(queries, max_new_tokens=3, **SAMPLE)
        stats = trainer.step(queries, responses, [torch.tensor(float(len(r))) for r in responses])
        out.append({k: v for k, v in stats.items() if not k.startswith("time/")})
    return out


@pytest.mark.slow
def test_same_seed_same_stats():
    first, second = run_steps(seed=0), run_steps(seed=0)
    assert first == second
    assert first[0]["objective/kl"] == 0.0 and first[1]["objective/kl"] != 0.0  # step 2 ran after an update
    assert run_steps(seed=1)[1] != first[1]  # the seed sets the minibatch order, hence the updates


@torch.no_grad()
def first_token_prob(trainer: Seq2SeqPPOTrainer, queries: list[torch.Tensor], token: int) -> float:
    """The mean probability, over the queries, that the policy's first decoder token is `token`."""
    padded = torch.nn.utils.rnn.pad_sequence(queries, batch_first=True, padding_value=PAD)
    start = torch.full((len(queries), 1), PAD)
    logits, _ = trainer.policy(padded, (padded != PAD).long(), start, torch.ones_like(start))
    return logits[:, 0].softmax(-1)[:, token].mean().item()


@pytest.mark.slow
def test_ppo_learns_a_bandit():
    """Reward 1 when the first response token is TARGET, else 0: PPO must make TARGET the likely first token."""
    target = 8  # about 1/VOCAB likely at first
    config = PPOConfig(batch_size=16, mini_batch_size=4, ppo_epochs=2, learning_rate=1e-2, init_kl_coef=0.01,
                       adap_kl_ctrl=False)
    trainer = Seq2SeqPPOTrainer(config, tiny_peft_t5(), tiny_tokenizer())
    queries = random_queries(16, seed=11)
    before = first_token_prob(trainer, queries, target)
    torch.manual_seed(0)
    for _ in range(15):
        responses = trainer.generate(queries, max_new_tokens=2, **SAMPLE)
        trainer.step(queries, responses, [torch.tensor(float(r[0] == target)) for r in responses])
    after = first_token_prob(trainer, queries, target)
    assert before < 0.1 and after > 0.5, (before, after)
