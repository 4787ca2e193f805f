"""PPO for a seq2seq policy that carries a LoRA adapter (chapter 05), written by hand.

Written here because trl dropped its PPOTrainer and value-head models (1.13) and its GRPO and RLOO
trainers never supported seq2seq models. It follows trl's old PPOTrainer (Ziegler et al. 2019,
"Fine-Tuning Language Models from Human Preferences") and reports the same stats names, with two
choices worth knowing:

- the frozen reference is the policy with its adapter disabled, so no second copy of the weights is
  kept: the LoRA adapter and a small value head are the only weights PPO trains;
- every forward pass, for the rollout and for the optimisation, runs with dropout off (`eval()`).
  With dropout on, policy and reference disagree even with identical weights (the old lab's large KL
  at step 0); here the KL is exactly 0 until the first update, and the PPO ratio starts at 1.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from peft import PeftModel
from torch import Tensor, nn
from transformers import PreTrainedTokenizerBase


@dataclass
class PPOConfig:
    """Hyper-parameters of `Seq2SeqPPOTrainer`: trl's old PPOConfig names and defaults, batch sizes of the lab."""

    learning_rate: float = 1.41e-5  # Adam's step size for the LoRA adapter and the value head
    batch_size: int = 16  # (query, response, score) triples per `step`
    mini_batch_size: int = 4  # rows per optimisation step; must divide batch_size
    ppo_epochs: int = 4  # passes over each batch
    gamma: float = 1.0  # discount per token
    lam: float = 0.95  # GAE lambda: 0 = one-step TD advantages, 1 = Monte-Carlo returns
    cliprange: float = 0.2  # the policy ratio is clipped to 1 +- cliprange
    cliprange_value: float = 0.2  # new values are clipped to old +- cliprange_value
    vf_coef: float = 0.1  # weight of the value loss in the total loss
    init_kl_coef: float = 0.2  # starting weight of the per-token KL penalty
    adap_kl_ctrl: bool = True  # adapt the KL weight towards `target` (else keep it fixed)
    target: float = 6.0  # the KL per sequence (nats) the adaptive controller aims at
    horizon: float = 10000  # samples over which the adaptive controller changes the weight by at most 20%
    max_grad_norm: float = 1.0  # gradient clipping
    seed: int = 0  # shuffles the minibatches

    def __post_init__(self):
        positive = ("learning_rate", "batch_size", "mini_batch_size", "ppo_epochs", "cliprange",
                    "cliprange_value", "target", "horizon", "max_grad_norm")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"PPOConfig.{name} must be > 0, got {getattr(self, name)!r}.")
        for name in ("vf_coef", "init_kl_coef"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"PPOConfig.{name} must be >= 0, got {getattr(self, name)!r}.")
        for name in ("gamma", "lam"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"PPOConfig.{name} must lie in [0, 1], got {getattr(self, name)!r}.")
        if self.batch_size % self.mini_batch_size:
            fit = max(d for d in range(1, self.mini_batch_size + 1) if self.batch_size % d == 0)
            raise ValueError(f"PPOConfig.batch_size ({self.batch_size}) must be a multiple of mini_batch_size "
                             f"({self.mini_batch_size}): change one of them, e.g. mini_batch_size={fit}.")


def logprobs_from_logits(logits: Tensor, labels: Tensor) -> Tensor:
    """log p(label) at every position: [B, T, V] logits and [B, T] labels -> [B, T] (in float32)."""
    return torch.log_softmax(logits.float(), dim=-1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)


def entropy_from_logits(logits: Tensor) -> Tensor:
    """The entropy (nats) of the next-token distribution at every position: [B, T, V] -> [B, T]."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """The mean of `x` where `mask` is 1."""
    return (x * mask).sum() / mask.sum()


def masked_var(x: Tensor, mask: Tensor) -> Tensor:
    """The unbiased variance of `x` where `mask` is 1 (the biased one for a single element)."""
    n = mask.sum()
    return masked_mean((x - masked_mean(x, mask)) ** 2, mask) * n / (n - 1).clamp(min=1)


def masked_whiten(x: Tensor, mask: Tensor) -> Tensor:
    """`x` shifted and scaled to mean 0 and std 1 over the masked elements; 0 elsewhere."""
    return (x - masked_mean(x, mask)) * torch.rsqrt(masked_var(x, mask) + 1e-8) * mask


def compute_gae(
    rewards: Tensor, values: Tensor, mask: Tensor, gamma: float, lam: float
) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimates and returns (= advantages + values) per token,
    all [B, T].

    delta_t = r_t + gamma * V_{t+1} - V_t and A_t = delta_t + gamma * lam * A_{t+1},
    with V and A zero after the last token of a row: `mask` marks each row's tokens, and
    the positions after them are padding.
    """
    rewards, values = rewards * mask, values * mask  # padding contributes nothing
    advantages = torch.zeros_like(rewards)
    next_value = next_advantage = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        next_advantage = delta + gamma * lam * next_advantage
        advantages[:, t], next_value = next_advantage, values[:, t]
    advantages = advantages * mask
    return advantages, (advantages + values) * mask


def kl_penalty_rewards(logprobs: Tensor, ref_logprobs: Tensor, scores: Tensor, mask: Tensor,
                       kl_coef: float) -> tuple[Tensor, Tensor]:
    """Per-token rewards -kl_coef * (logp - ref_logp), plus each row's score at its last token; and the
    per-token KL estimate logp - ref_logp itself. Both [B, T], zero on padding."""
    kl = (logprobs - ref_logprobs) * mask
    rewards = -kl_coef * kl
    last = mask.sum(1).long() - 1
    rewards[torch.arange(len(rewards), device=rewards.device), last] += scores
    return rewards, kl


def clipped_policy_loss(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    cliprange: float,
) -> tuple[Tensor, Tensor]:
    """PPO's clipped surrogate: mean of max(-A * r, -A * clip(r, 1 - c, 1 + c)) with
    r = p / p_old; and the fraction of tokens where the clipped term was the larger (its
    gradient is zero there)."""
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1 - cliprange, 1 + cliprange)
    loss = masked_mean(torch.max(unclipped, clipped), mask)
    return loss, masked_mean((clipped > unclipped).float(), mask)


def clipped_value_loss(values: Tensor, old_values: Tensor, returns: Tensor, mask: Tensor,
                       cliprange_value: float) -> tuple[Tensor, Tensor]:
    """0.5 * mean of max((V - R)^2, (V_clipped - R)^2), V_clipped = V kept within old +- cliprange_value;
    and the fraction of tokens where the clipped error was the larger."""
    clipped_values = torch.max(torch.min(values, old_values + cliprange_value), old_values - cliprange_value)
    unclipped, clipped = (values - returns) ** 2, (clipped_values - returns) ** 2
    return 0.5 * masked_mean(torch.max(unclipped, clipped), mask), masked_mean((clipped > unclipped).float(), mask)


class AdaptiveKLController:
    """The KL weight of Ziegler et al. (2019): raised while the KL is above `target`,
    lowered while below, by a proportional error clipped to +-20% per `horizon`
    samples."""

    def __init__(self, init_kl_coef: float, target: float, horizon: float):
        self.value, self.target, self.horizon = init_kl_coef, target, horizon

    def update(self, current_kl: float, n_steps: int) -> None:
        error = min(max(current_kl / self.target - 1, -0.2), 0.2)
        self.value *= 1 + error * n_steps / self.horizon


class FixedKLController:
    """A constant KL weight."""

    def __init__(self, kl_coef: float):
        self.value = kl_coef

    def update(self, current_kl: float, n_steps: int) -> None:
        pass


class ValueHead(nn.Module):
    """A linear map from the decoder's last hidden state to a scalar value per position.

    It starts at zero: every value is 0, so the first advantages are the rewards themselves rather than
    the noise of a random head (which whitening would mix into every advantage and which slowed the
    bandit test about twofold).
    """

    def __init__(self, hidden_size: int):
        super().__init__()
        self.summary = nn.utils.skip_init(nn.Linear, hidden_size, 1)  # no draw from torch's global RNG
        nn.init.zeros_(self.summary.weight)
        nn.init.zeros_(self.summary.bias)

    def forward(self, hidden: Tensor) -> Tensor:
        return self.summary(hidden.to(self.summary.weight.dtype)).squeeze(-1)


class Seq2SeqPolicyWithValueHead(nn.Module):
    """A `PeftModel` over a seq2seq LM, plus a value head on its decoder; `reference()` disables the adapter."""

    def __init__(self, model: PeftModel):
        super().__init__()
        if not isinstance(model, PeftModel):
            raise TypeError(f"expected a peft.PeftModel (e.g. from get_peft_model), got {type(model).__name__}.")
        config = model.get_base_model().config
        if not config.is_encoder_decoder:
            raise ValueError(f"{type(model.get_base_model()).__name__} is not a seq2seq model; for a causal "
                             "policy use trl's GRPOTrainer or RLOOTrainer.")
        if not any(p.requires_grad for p in model.parameters()):
            raise ValueError("the adapter has no trainable weights: load it with "
                             "PeftModel.from_pretrained(..., is_trainable=True).")
        self.model = model
        device = next(model.parameters()).device
        self.value_head = ValueHead(config.hidden_size).to(device)

    def forward(self, input_ids: Tensor, attention_mask: Tensor, decoder_input_ids: Tensor,
                decoder_attention_mask: Tensor) -> tuple[Tensor, Tensor]:
        """Logits [B, T, V] and values [B, T] at every decoder position."""
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids,
                         decoder_attention_mask=decoder_attention_mask, output_hidden_states=True, return_dict=True)
        return out.logits, self.value_head(out.decoder_hidden_states[-1])

    @contextmanager
    def reference(self) -> Iterator[Seq2SeqPolicyWithValueHead]:
        """Within this block, the model is the frozen base model (adapter off): PPO's reference."""
        with self.model.disable_adapter():
            yield self


def _pad_right(seqs: Sequence[Tensor], value: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """1-D tensors -> a [B, T] batch padded on the right with `value`, and its 0/1 mask."""
    ids = nn.utils.rnn.pad_sequence([s.to(device) for s in seqs], batch_first=True, padding_value=value)
    lengths = torch.tensor([len(s) for s in seqs], device=device)
    return ids, (torch.arange(ids.shape[1], device=device) < lengths[:, None]).long()


class Seq2SeqPPOTrainer:
    """PPO on a seq2seq `PeftModel`: `generate` responses, score them, then `step(queries, responses, scores)`.

    Trains the adapter and a value head with Adam (or `optimizer`); the reference is the same model with
    the adapter disabled. Both run with dropout off (see the module docstring).
    """

    def __init__(self, config: PPOConfig, model: PeftModel, tokenizer: PreTrainedTokenizerBase,
                 optimizer: torch.optim.Optimizer | None = None):
        self.config, self.tokenizer = config, tokenizer
        self.policy = Seq2SeqPolicyWithValueHead(model).eval()
        self.device = next(model.parameters()).device
        self.trainable = [p for p in self.policy.parameters() if p.requires_grad]
        self.optimizer = optimizer or torch.optim.Adam(self.trainable, lr=config.learning_rate)
        self.kl_ctl = (AdaptiveKLController(config.init_kl_coef, config.target, config.horizon)
                       if config.adap_kl_ctrl else FixedKLController(config.init_kl_coef))
        base = model.get_base_model()
        self.decoder_start_token_id = (base.generation_config.decoder_start_token_id
                                       if base.generation_config.decoder_start_token_id is not None
                                       else getattr(base.config, "decoder_start_token_id", None))
        if self.decoder_start_token_id is None:
            raise ValueError("the model has no decoder_start_token_id: set model.generation_config."
                             "decoder_start_token_id (T5 uses its pad token id, 0).")
        self.current_step = 0

    @torch.no_grad()
    def generate(self, query_tensors: list[Tensor], **generation_kwargs) -> list[Tensor]:
        """Sample one response per query in one batch (torch's global RNG: seed it to repeat a run).

        Each response drops the decoder start token and everything after its first eos (the eos stays).
        """
        self.policy.eval()
        input_ids, attention_mask = _pad_right(query_tensors, self.tokenizer.pad_token_id, self.device)
        generation_kwargs = {"pad_token_id": self.tokenizer.pad_token_id,
                             "decoder_start_token_id": self.decoder_start_token_id, **generation_kwargs}
        out = self.policy.model.generate(input_ids=input_ids, attention_mask=attention_mask, **generation_kwargs)
        responses = []
        for row in out[:, 1:]:  # column 0 is the decoder start token
            eos = (row == self.tokenizer.eos_token_id).nonzero()
            responses.append(row[: eos[0, 0] + 1] if len(eos) else row)
        return responses

    def _check(self, queries: Sequence[Tensor], responses: Sequence[Tensor],
               scores: Sequence[Tensor] | Tensor) -> Tensor:
        """Raise a ValueError that says what to change for malformed inputs; return the scores as [B] floats."""
        n = self.config.batch_size
        for name, items in (("queries", queries), ("responses", responses), ("scores", scores)):
            if len(items) != n:
                raise ValueError(f"step() got {len(items)} {name} but PPOConfig.batch_size is {n}: pass batch_size "
                                 "queries, responses and scores, or change batch_size.")
        for name, items in (("query", queries), ("response", responses)):
            for i, seq in enumerate(items):
                if seq.dim() != 1 or len(seq) == 0:
                    raise ValueError(f"{name} {i} has shape {tuple(seq.shape)}: each must be a non-empty 1-D tensor "
                                     "of token ids (generate with min_new_tokens=1, or drop the pair).")
        scores = [torch.as_tensor(s, dtype=torch.float32) for s in scores]
        for i, s in enumerate(scores):
            if s.numel() != 1:
                raise ValueError(f"score {i} has shape {tuple(s.shape)}: PPO needs one scalar reward per response "
                                 "(e.g. the classifier's logit for the wanted class).")
        return torch.stack([s.reshape(()) for s in scores]).to(self.device)

    def _batch(self, queries: Sequence[Tensor], responses: Sequence[Tensor]) -> dict[str, Tensor]:
        """Padded encoder inputs, decoder inputs [start] + response[:-1], labels = response, and their mask."""
        pad = self.tokenizer.pad_token_id
        input_ids, attention_mask = _pad_right(queries, pad, self.device)
        labels, mask = _pad_right(responses, pad, self.device)
        start = torch.full_like(labels[:, :1], self.decoder_start_token_id)
        return dict(input_ids=input_ids, attention_mask=attention_mask, labels=labels, mask=mask,
                    decoder_input_ids=torch.cat([start, labels[:, :-1]], dim=1))

    def _forward(self, batch: dict[str, Tensor], rows: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Log-probabilities, values and entropies [len(rows), T] of the response tokens of `rows`."""
        logits, values = self.policy(batch["input_ids"][rows], batch["attention_mask"][rows],
                                     batch["decoder_input_ids"][rows], batch["mask"][rows])
        entropy = entropy_from_logits(logits.detach())  # a statistic only: no graph to keep
        return logprobs_from_logits(logits, batch["labels"][rows]), values.float(), entropy

    @torch.no_grad()
    def _rollout(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """`_forward` over the whole batch, one minibatch at a time to bound the memory."""
        chunks = torch.arange(len(batch["labels"]), device=self.device).split(self.config.mini_batch_size)
        outputs = [self._forward(batch, rows) for rows in chunks]
        return tuple(torch.cat(parts) for parts in zip(*outputs, strict=True))

    def step(self, queries: Sequence[Tensor], responses: Sequence[Tensor],
             scores: Sequence[Tensor] | Tensor) -> dict[str, float]:
        """One PPO step on `batch_size` (query, response, score) triples; returns trl's stats as floats.

        `objective/kl` is the mean over sequences of the summed logp - ref_logp, measured on the rollout,
        before this step's update: an estimate from the sampled tokens, so a small batch can make it negative.
        `ppo/policy/advantages_mean` is taken before the advantages are whitened.
        """
        t0, cfg = time.perf_counter(), self.config
        scores = self._check(queries, responses, scores)
        batch = self._batch(queries, responses)
        mask = batch["mask"].float()
        self.policy.eval()  # dropout off in every pass, so that policy == reference until the first update
        old_logprobs, old_values, entropy = self._rollout(batch)
        with self.policy.reference():
            ref_logprobs, _, _ = self._rollout(batch)
        kl_coef = self.kl_ctl.value
        rewards, kl = kl_penalty_rewards(old_logprobs, ref_logprobs, scores, mask, kl_coef)
        advantages, returns = compute_gae(rewards, old_values, mask, cfg.gamma, cfg.lam)
        whitened = masked_whiten(advantages, mask)

        logs: dict[str, list[float]] = defaultdict(list)
        shuffle = torch.Generator().manual_seed(cfg.seed * 1_000_003 + self.current_step)
        for _ in range(cfg.ppo_epochs):
            for rows in torch.randperm(cfg.batch_size, generator=shuffle).split(cfg.mini_batch_size):
                rows = rows.to(self.device)
                m = mask[rows]
                logprobs, values, mb_entropy = self._forward(batch, rows)
                pg_loss, pg_clipfrac = clipped_policy_loss(logprobs, old_logprobs[rows], whitened[rows], m,
                                                           cfg.cliprange)
                vf_loss, vf_clipfrac = clipped_value_loss(values, old_values[rows], returns[rows], m,
                                                          cfg.cliprange_value)
                loss = pg_loss + cfg.vf_coef * vf_loss
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(self.trainable, cfg.max_grad_norm)
                self.optimizer.step()
                log_ratio = logprobs.detach() - old_logprobs[rows]
                for name, value in {
                    "ppo/policy/entropy": masked_mean(mb_entropy, m),
                    "ppo/policy/approxkl": 0.5 * masked_mean(log_ratio**2, m),
                    "ppo/policy/policykl": masked_mean(-log_ratio, m), "ppo/policy/clipfrac": pg_clipfrac,
                    "ppo/val/clipfrac": vf_clipfrac, "ppo/val/vpred": masked_mean(values, m),
                    "ppo/val/error": masked_mean((values - returns[rows]) ** 2, m),
                    "ppo/loss/policy": pg_loss, "ppo/loss/value": vf_loss, "ppo/loss/total": loss,
                }.items():
                    logs[name].append(value.item())

        mean_kl = kl.sum(1).mean().item()
        self.kl_ctl.update(mean_kl, cfg.batch_size)
        self.current_step += 1
        stats = {
            "objective/kl": mean_kl, "objective/kl_coef": kl_coef,
            "objective/entropy": (entropy * mask).sum(1).mean(),
            "ppo/mean_scores": scores.mean(), "ppo/std_scores": scores.std(),
            "ppo/mean_non_score_reward": (-kl_coef * kl).sum(1).mean(),
            "ppo/returns/mean": masked_mean(returns, mask), "ppo/returns/var": masked_var(returns, mask),
            "ppo/policy/advantages_mean": masked_mean(advantages, mask),
            **{name: sum(values) / len(values) for name, values in logs.items()},
            "ppo/learning_rate": self.optimizer.param_groups[0]["lr"],
        }
        stats["time/ppo/total"] = time.perf_counter() - t0
        return {name: float(value) for name, value in stats.items()}
