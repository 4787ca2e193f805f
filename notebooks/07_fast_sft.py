# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Faster fine-tuning: padding, padding-free and packing
#
# A batch of examples of different lengths is usually **padded**: every row is filled with pad
# tokens up to the longest one, and the model computes on the pads too, only to throw the result
# away. There are two ways out:
#
# - **padding-free**: put the batch's examples one after another in a single row, restart the
#   position ids at each example, and keep the attention inside each example (transformers'
#   `DataCollatorWithFlattening`, or trl's `padding_free=True`);
# - **packing**: fill rows of a fixed length with whole examples, best fit first (trl's
#   `packing=True`), with the same per-example positions and attention.
#
# This chapter trains the same model for the same number of steps on
# [chapter 1](01_instruction_data.ipynb)'s instruction data
# in the three layouts and measures what changes: tokens per second (real tokens, not pads), memory,
# and the loss, which should not change. You will learn:
#
# - how much of a padded batch is padding, and why it grows with the batch size;
# - how a padding-free batch is laid out, and what the attention must do with it;
# - how to time training steps fairly, and why the losses of the three runs agree;
# - when packing leaks attention across examples, and how to see it in one number.
#
# **On a T4.** On a free Colab T4 (15 GB) the `hub` profile needs about 11 GiB of GPU memory at its
# fullest and about 2 minutes (estimated from the real models' shapes and its `hub` settings by
# `llmtut.t4_plan`; nothing was measured on a GPU). The `tiny` profile runs on a CPU.

# %%
# Colab only: install llmtut, the book's package (with transformers, trl, peft, ...).
import subprocess
import sys

if "google.colab" in sys.modules:
    package = "llmtut @ git+https://github.com/llmtut/llmtut"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], check=True)

# %%
import contextlib
import math
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from datasets import Dataset
from IPython.display import display
from tqdm.auto import tqdm
from transformers import (
    AutoModelForCausalLM,
    DataCollatorWithFlattening,
    PrinterCallback,
    Trainer,
    TrainingArguments,
)
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from llmtut import attention, batching, profiles
from llmtut.batching import (
    CountingCollator,
    CudaPeakMemory,
    StepTimer,
    pack_into_rows,
    pad_fraction,
)
from llmtut.formats import format_phi3
from llmtut.page import show_source
from llmtut.precision import precision_for
from llmtut.report import record
from llmtut.trainer_defaults import quiet_trainer_args

# %% [markdown]
# The chapter's parameters. `PROFILE = "hub"` runs on `gpt2-medium` ([chapter 1](01_instruction_data.ipynb)'s model) and the
# source's instruction file, on a GPU; `PROFILE = "tiny"` on [chapter 1](01_instruction_data.ipynb)'s tiny-world GPT-2 and
# instructions, on a CPU in two to three minutes. papermill overrides these values.

# %% tags=["parameters"]
PROFILE = profiles.default_profile()  # "hub" or "tiny"
SEED = 0
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
BATCH_SIZE = None  # examples per optimizer step (None: the profile's default below)
PACKED_ROWS_PER_STEP = 8  # packed rows per step, together about BATCH_SIZE examples
EPOCHS = (
    None  # passes over the training examples, the same for every layout (None: default)
)
HELD_OUT = 100  # examples kept out of training, to compare the trained models on
N_EXAMPLES = None  # instruction records to use, held-out ones included (None: all)
WARMUP_STEPS = 3  # steps left out of the throughput (and the learning rate's warm-up)
REPEATS = 2  # interleaved runs of each layout; the fastest counts
SWEEP_BATCH_SIZES = None  # batch sizes of the speed sweep (None: the profile's default)
SWEEP_STEPS = 6  # timed steps per layout and batch size in the sweep
LEARNING_RATE = None  # None: the profile's default below
OUT_DIR = "out/07_fast_sft"

# %%
profiles.check_profile(PROFILE)
# tiny: large batches, as instruction tuning uses (Alpaca's recipe: 128), where padding
# costs the most (see the sweep); hub: what gpt2-medium fits on a 16 GB Colab GPU
defaults = {
    "tiny": {"batch": 160, "epochs": 4, "sweep": (8, 32, 160), "lr": 1e-3},
    "hub": {"batch": 32, "epochs": 1, "sweep": (8, 16, 32), "lr": 5e-5},
}[PROFILE]
BATCH_SIZE, EPOCHS = BATCH_SIZE or defaults["batch"], EPOCHS or defaults["epochs"]
SWEEP_BATCH_SIZES, lr = (
    SWEEP_BATCH_SIZES or defaults["sweep"],
    LEARNING_RATE or defaults["lr"],
)
out_dir = Path(OUT_DIR)
out_dir.mkdir(parents=True, exist_ok=True)
torch.set_num_threads(os.cpu_count() or 1)
# fp16 on a T4, bf16 from compute capability 8.0, fp32 on the CPU
precision = precision_for(DEVICE)
dtype = precision.autocast_dtype
computes_in = f"mixed precision ({dtype})" if dtype else "full precision (fp32)"
print(
    f"The {PROFILE} profile on {DEVICE} ({torch.get_num_threads()} threads), seed "
    f"{SEED}: batches of {BATCH_SIZE} examples, {EPOCHS} epochs, learning rate {lr}, "
    f"in {computes_in}."
)

# %% tags=["remove-cell"]
# recorded for the book's regression checks (not shown on the page)
record("device", DEVICE)  # a GPU run's figures are not a CPU's

# %% [markdown]
# ## The data, and how much of a padded batch is padding
#
# [Chapter 1](01_instruction_data.ipynb)'s records, each in the Phi-3 prompt style and ending with the end-of-text token,
# tokenized once. (The Alpaca style would do as well, but its 30-token preamble, the same in every
# example, makes the lengths more alike and the padding smaller.) Their lengths vary, so a padded
# batch is as long as its longest example.

# %%
model_name = profiles.resolve("instruction_base", PROFILE)
base_model, tokenizer = profiles.load_causal_lm(
    "instruction_base", PROFILE, pad_with_eos=True
)
records = profiles.load_instruction_data(
    out_dir / "instruction-data.json", PROFILE, seed=SEED
)[:N_EXAMPLES]
max_len = min(tokenizer.model_max_length, 1024)
ids = [
    tokenizer(format_phi3(r, with_response=True) + tokenizer.eos_token)["input_ids"][
        :max_len
    ]
    for r in records
]
held_out = [{"input_ids": x} for x in ids[-HELD_OUT:]]
steps_per_epoch = (len(ids) - HELD_OUT) // BATCH_SIZE
steps = EPOCHS * steps_per_epoch
train_ids = (
    Dataset.from_dict({"input_ids": ids[:-HELD_OUT]})
    .shuffle(seed=SEED)
    .select(range(steps_per_epoch * BATCH_SIZE))
)
lengths = np.array([len(x) for x in train_ids["input_ids"]])
print(format_phi3(records[0], with_response=True) + tokenizer.eos_token)
print(
    f"\n{len(train_ids)} training examples, {steps} steps of {BATCH_SIZE} ({EPOCHS} "
    f"epochs), {HELD_OUT} held out; tokens per example: min {lengths.min()}, "
    f"median {int(np.median(lengths))}, max {lengths.max()}"
)

# %% [markdown]
# Here is a padded batch of the first 160 examples of the shuffled training set (the `Trainer` draws
# its own random batches from the same examples), row by row, its rows sorted by length for the plot
# (sorting moves no pad): the blue part of each row is the example, the grey part is padding up to
# the batch's longest example. Every layer of the model
# computes on the grey part too.

# %%
pad_share = round(pad_fraction(lengths, BATCH_SIZE), 4)
print(
    f"Over all the padded batches of {BATCH_SIZE}, "
    f"{pad_share:.1%} of the tokens are padding."
)
first = np.sort(lengths[:BATCH_SIZE])
fig, ax = plt.subplots(figsize=(8, 3.2))
ax.barh(range(len(first)), first, color="tab:blue", label="real tokens", height=1.0)
ax.barh(
    range(len(first)),
    first.max() - first,
    left=first,
    color="lightgray",
    label="padding",
    height=1.0,
)
ax.set(
    xlabel="tokens",
    ylabel="row, sorted by length",
    title=f"A padded batch of {BATCH_SIZE} examples: "
    f"{1 - first.sum() / first.size / first.max():.0%} of it is padding",
)
ax.legend(loc="lower left", fontsize=8)
plt.tight_layout()
plt.show()

# %% tags=["remove-cell"]
# recorded for the book's regression checks (not shown on the page)
record("padded.pad_fraction", pad_share)

# %% [markdown]
# The plot's share is this one batch's; over all the batches of an epoch it is the share printed
# above. The padding share depends on the batch size: the more examples a batch holds, the longer
# its longest one is likely to be, and the more the others are padded.

# %%
pd.DataFrame(
    {"padding share": [f"{pad_fraction(lengths, b):.3f}" for b in SWEEP_BATCH_SIZES]},
    index=pd.Index(SWEEP_BATCH_SIZES, name="batch size"),
).T

# %% [markdown]
# ## Three layouts of the same examples
#
# The same four examples, collated three ways. **Padded** (trl's `DataCollatorForLanguageModeling`):
# one row each, pads at the end, an attention mask that hides them, labels -100 on the pads.
# **Padding-free** (transformers' `DataCollatorWithFlattening`): one row, `position_ids` that restart
# at 0 where each example begins, labels -100 at each start (nothing in the row before it predicts
# it), and `cu_seq_lens_q`, the cumulative lengths that tell the attention where each example starts.

# %%
four = [{"input_ids": x} for x in train_ids["input_ids"][:4]]
padded_collator = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id)
flat_collator = DataCollatorWithFlattening(return_flash_attn_kwargs=True)
padded_four, flat_four = padded_collator(four), flat_collator(four)
starts = flat_four["cu_seq_lens_q"].tolist()
positions = flat_four["position_ids"][0].tolist()
width = padded_four["input_ids"].shape[1]
spans = list(zip(starts[:-1], starts[1:], strict=True))
display(
    pd.DataFrame(
        {
            "length": [end - start for start, end in spans],
            "pads in its padded row": [width - (end - start) for start, end in spans],
            "tokens of the padding-free row": [f"{a} to {b - 1}" for a, b in spans],
            "their position_ids": [
                f"{positions[a]}, {positions[a + 1]}, ..., {positions[b - 1]}"
                for a, b in spans
            ],
        },
        index=pd.Index(range(1, len(four) + 1), name="example"),
    )
)


def tensors(batch: dict) -> str:
    names = [k for k, v in batch.items() if torch.is_tensor(v) and v.dim() == 2]
    return ", ".join(names[:-1]) + " and " + names[-1]


print(
    f"Padded: {tensors(padded_four)}, {len(four)} rows of {width} tokens each, "
    f"{padded_four['input_ids'].numel()} tokens computed.\n"
    f"Padding-free: {tensors(flat_four)}, one row of {starts[-1]} tokens, "
    f"{flat_four['input_ids'].numel()} tokens computed; cu_seq_lens_q = {starts}."
)

# %% [markdown]
# **Packed** rows are built before training: trl's `pack_dataset(..., strategy="bfd")`, what
# `SFTTrainer(packing=True)` runs, places whole examples into rows of a fixed length, the longest
# first, each into the row where it fits best. A row keeps `seq_lengths`, from which trl's collator
# (`padding_free=True`) makes the same restarting positions, and it flattens the rows of a step into
# one. For a fair race the packed run must take the same optimizer steps over the same examples, so
# `pack_into_rows` picks the shortest row length that packs one epoch into `PACKED_ROWS_PER_STEP` rows
# for each step that the padded run takes:

# %%
display(show_source(pack_into_rows))


def packed_for_steps(rows_per_step: int) -> tuple[Dataset, int]:
    rows, length = pack_into_rows(train_ids, steps_per_epoch * rows_per_step)
    assert sum(map(len, rows["seq_lengths"])) == len(train_ids), (
        "every example is in a packed row"
    )
    assert -(-len(rows) // rows_per_step) == steps_per_epoch, (
        "the packed run takes the same steps per epoch"
    )
    return rows, length


packed_rows, pack_length = packed_for_steps(PACKED_ROWS_PER_STEP)
fill = sum(map(sum, packed_rows["seq_lengths"])) / (len(packed_rows) * pack_length)
print(
    f"The {len(train_ids)} examples fill {len(packed_rows)} packed rows of at most "
    f"{pack_length} tokens ({fill:.1%} full), {PACKED_ROWS_PER_STEP} rows a step."
)

# %% [markdown]
# ## The attention inside a row of several examples
#
# In a padding-free or packed row, each example must attend only to itself, as it would alone. On a
# GPU that is Flash Attention 2's variable-length kernel, which reads `cu_seq_lens_q` and never
# computes the blocks across examples. It does not run on a CPU, and transformers' `sdpa` attention,
# given such a row, builds a dense block-diagonal mask over the whole row and computes every block,
# which costs more than the padding saves. So `llmtut.attention` registers a small varlen attention
# of its own: one causal `scaled_dot_product_attention` per example, the same arithmetic as the
# kernel, on any device. On a GPU of compute capability 8.0 or more (an A100, L4 or H100; not a T4)
# with `flash-attn` installed the chapter uses Flash Attention 2. Here is the heart of it (its
# signature and argument checks left out): split the row's queries, keys and values at the example
# boundaries that `cu_seq_lens_q` gives, run one causal SDPA per example, and concatenate the parts.

# %%
display(
    show_source(
        attention.varlen_sdpa_attention,
        start="lengths = cu_seq_lens_q",
        stop="return torch.cat",
    )
)
varlen = attention.varlen_attention_for(DEVICE)
print(f"On {DEVICE}, padding-free and packed rows use the attention named {varlen!r}.")

# %% [markdown]
# ## Three runs, one model, the same steps
#
# The same starting weights, learning rate schedule, seed and number of optimizer steps each time,
# with the same transformers `Trainer`; only the collator (and, for packing, the rows) change:
#
# - **padded**: trl's `DataCollatorForLanguageModeling`; a step sees `BATCH_SIZE` rows, each
#   padded to the longest;
# - **padding-free**: transformers' `DataCollatorWithFlattening`; a step sees the same `BATCH_SIZE`
#   examples in one row;
# - **packed**: trl's `DataCollatorForLanguageModeling` with `padding_free=True`; a step sees
#   `PACKED_ROWS_PER_STEP` packed rows flattened into one, about `BATCH_SIZE` examples.
#
# How we measure, since timing is easy to get wrong:
#
# - **throughput** is real tokens (what the collator received, pads not counted) per second of
#   optimizer steps (forward, backward, update; `StepTimer` waits for the GPU), leaving out the first
#   `WARMUP_STEPS`, while the allocator and the kernels warm up;
# - each layout runs `REPEATS` times, interleaved with the others, and its fastest run counts: a
#   busy machine only ever slows a run down, and the same seed gives the same model each time;
# - **memory** is what a step holds for its backward pass, measured exactly on the first batches
#   (`batching.saved_activation_bytes`), and on a GPU also torch's peak allocated memory;
# - the **final loss** is each trained model's mean loss per token on the same `HELD_OUT` examples,
#   padded and computed the same way for all three.


# %%
@torch.no_grad()
def held_out_loss(model) -> float:
    model.eval().set_attn_implementation("sdpa")
    batch = {k: v.to(DEVICE) for k, v in padded_collator(held_out).items()}
    return model(**batch).loss.item()


COLLATORS = {
    "padded": padded_collator,
    "padding_free": flat_collator,
    "packed": DataCollatorForLanguageModeling(
        pad_token_id=tokenizer.pad_token_id, padding_free=True
    ),
}


def new_model(layout: str):
    torch.manual_seed(SEED)
    attn = "sdpa" if layout == "padded" else varlen
    return AutoModelForCausalLM.from_pretrained(
        model_name, attn_implementation=attn, **precision.load_kwargs(trains=True)
    ).to(DEVICE)


def activation_mb(layout: str, rows: Dataset, n_batches: int = 3) -> float:
    """The largest activation memory of a step over a layout's first batches (MiB)."""
    model, per_step = (
        new_model(layout).train(),
        PACKED_ROWS_PER_STEP if layout == "packed" else BATCH_SIZE,
    )
    sizes = []
    for i in range(n_batches):
        batch = COLLATORS[layout](
            [rows[j] for j in range(i * per_step, (i + 1) * per_step)]
        )
        batch = {k: v.to(DEVICE) if torch.is_tensor(v) else v for k, v in batch.items()}
        sizes.append(batching.saved_activation_bytes(model, batch))
    return max(sizes) / 2**20


def train(layout: str, rows: Dataset, n_steps: int, batch_size: int) -> dict:
    """Train a fresh base model for `n_steps` of `batch_size` rows: figures, model."""
    model = new_model(layout)
    args = TrainingArguments(
        output_dir=str(out_dir / layout),
        max_steps=n_steps,
        learning_rate=lr,
        lr_scheduler_type="cosine",
        warmup_steps=WARMUP_STEPS,
        per_device_train_batch_size=batch_size,
        logging_steps=1,
        data_seed=SEED,
        **precision.trainer_args(),
        # packed rows keep `seq_lengths`, where each example starts
        remove_unused_columns=False,
        # quiet: no per-step display, which would cost time inside the timed steps
        **quiet_trainer_args(SEED, DEVICE),
    )
    counter, timer = CountingCollator(COLLATORS[layout]), StepTimer()
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=rows,
        data_collator=counter,
        callbacks=[timer],
    )
    trainer.remove_callback(PrinterCallback)
    memory = CudaPeakMemory() if DEVICE == "cuda" else contextlib.nullcontext()
    with memory:
        trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {
        "tokens_per_s": batching.tokens_per_second(
            counter.per_batch, timer.times, min(WARMUP_STEPS, n_steps - 1)
        ),
        "real tokens": sum(counter.per_batch),
        "final_loss": held_out_loss(model),
        "losses": losses,
        "model": model,
        **({"gpu_peak_mb": memory.peak / 2**20} if DEVICE == "cuda" else {}),
    }


base_loss = held_out_loss(base_model.to(DEVICE))
print(f"held-out loss of the base model, before any training: {base_loss:.4f}")
base_model.to("cpu")  # free the GPU for the runs
layouts = {
    "padded": (train_ids, BATCH_SIZE),
    "padding_free": (train_ids, BATCH_SIZE),
    "packed": (packed_rows, PACKED_ROWS_PER_STEP),
}
runs: dict[str, dict] = {}
each_run: dict[str, list[float]] = {layout: [] for layout in layouts}  # tokens / s
for layout, (rows, per_step) in tqdm(
    [item for _ in range(REPEATS) for item in layouts.items()], desc="training runs"
):
    r = train(layout, rows, steps, per_step)
    each_run[layout].append(r["tokens_per_s"])
    if layout in runs:
        # The same seed gives the same model: bit for bit on the CPU. On a GPU some
        # backward kernels sum with atomics in a varying order, so repeats agree only
        # to rounding (fp16: about 1e-3).
        tolerance = 0.0 if DEVICE == "cpu" else 1e-2
        assert math.isclose(
            r["final_loss"], runs[layout]["final_loss"], rel_tol=tolerance
        ), (
            f"{layout}: held-out loss {r['final_loss']} vs "
            f"{runs[layout]['final_loss']} with the same seed"
        )
        r["tokens_per_s"] = max(r["tokens_per_s"], runs[layout]["tokens_per_s"])
    if layout != "padding_free":  # the one model a later section uses; free the rest
        r.pop("model")
    runs[layout] = r
for layout, (rows, _) in layouts.items():
    runs[layout]["activation_mb"] = activation_mb(layout, rows)
table = pd.DataFrame(
    {
        k: {c: v for c, v in r.items() if c not in ("losses", "model")}
        for k, r in runs.items()
    }
).T
table = table.astype(float)
table["speed-up"] = table["tokens_per_s"] / table.loc["padded", "tokens_per_s"]
speedup = round(table.loc["padding_free", "speed-up"], 3)
loss_spread = round(table["final_loss"].max() / table["final_loss"].min() - 1, 4)
shown = pd.DataFrame(
    {
        "real tokens per second": table["tokens_per_s"].round().astype(int),
        "speed-up": table["speed-up"].round(2),
        "real tokens": table["real tokens"].astype(int),
        "held-out loss": table["final_loss"].round(4),
        "activation memory (MiB)": table["activation_mb"].round().astype(int),
    }
).rename(index=lambda k: k.replace("_", "-"))
display(shown)
# each repeat's speed-up: a layout's run against the padded run of the same round
each_speedup = {
    layout: [x / p for x, p in zip(each_run[layout], each_run["padded"], strict=True)]
    for layout in ("padding_free", "packed")
}
repeats = {k: " and ".join(f"{x:.2f}x" for x in v) for k, v in each_speedup.items()}
print(
    f"Fastest run against fastest run, padding-free reaches {speedup:.2f}x the padded "
    f"throughput and packed {table.loc['packed', 'speed-up']:.2f}x. Round by round, "
    f"the {REPEATS} repeats gave padding-free {repeats['padding_free']}, packed "
    f"{repeats['packed']}. The held-out losses lie within {loss_spread:.2%} of each "
    "other."
)

# %% tags=["remove-cell"]
# recorded for the book's regression checks (not shown on the page)
for layout, r in runs.items():
    record(f"{layout}.tokens_per_s", round(r["tokens_per_s"], 1))
    record(f"{layout}.final_loss", round(r["final_loss"], 4))
record("padding_free.speedup", speedup)
record("final_loss.max_rel_diff", loss_spread)

# %% [markdown]
# All three runs start from the base model's held-out loss, the 12.1596 printed first
# ([chapter 1](01_instruction_data.ipynb) shows why a base model starts that high on a format it
# never read), and end at 4.07 to 4.08. The same figures as plots: throughput, memory, and the
# training loss of each step.

# %%

colors = ["tab:gray", "tab:blue", "tab:green"]
styles = ["-", "--", ":"]
fig = plt.figure(figsize=(8.5, 6))
bars = [fig.add_subplot(2, 2, 1), fig.add_subplot(2, 2, 2)]
curves = fig.add_subplot(2, 1, 2)
for ax, column, title, unit in [
    (bars[0], "tokens_per_s", "real tokens per second", "tokens / s"),
    (bars[1], "activation_mb", "activation memory of a step", "MiB"),
]:
    drawn = ax.bar([k.replace("_", "-") for k in runs], table[column], color=colors)
    ax.bar_label(drawn, fmt="%.0f")
    ax.set(title=title, ylabel=unit)
    ax.margins(y=0.15)
for (layout, r), color, style in zip(runs.items(), colors, styles, strict=True):
    step_numbers = range(1, len(r["losses"]) + 1)
    label = layout.replace("_", "-")
    curves.plot(step_numbers, r["losses"], style, color=color, label=label)
curves.set(title="training loss per step", xlabel="step", ylabel="loss")
curves.legend()
plt.tight_layout()
plt.show()
scale = np.array(runs["padded"]["losses"]) / np.array(runs["padding_free"]["losses"])
print(
    f"Step by step, the padded run's training loss is {scale.min():.3f} to "
    f"{scale.max():.3f} times the padding-free run's. The padded steps count one label "
    f"per example too many: {lengths.sum()} labels over an epoch where "
    f"{lengths.sum() - len(lengths)} tokens are predicted, which scales their loss by "
    f"{1 - len(lengths) / lengths.sum():.3f}."
)

# %% [markdown]
# Padding-free training computed only on real tokens, held less activation memory (436 MiB against
# the padded step's 587) and ended at the same held-out loss. Its training loss (dashed) lies a
# little above the padded run's (solid) by a constant factor, the one printed under the plot. That
# is bookkeeping, not learning: the `Trainer` divides a step's summed loss by the number of its
# labels, and for this model (whose config names no loss type) it counts each padded row's first
# token among them, though nothing predicts it; the flattened row marks that token -100. A loss
# scaled by a constant gives almost the same AdamW updates (clipping to a norm, or Adam's ratio
# of the gradient to its running size, cancels the scale), so the two runs train nearly the same
# model: their held-out losses agree to four decimals.
#
# How much faster padding-free was, the speed-up column says, and on two shared CPU cores that
# figure moves from one run of the chapter to the next: a busy machine can slow the padding-free
# runs more, with their many small attention calls. That is why each layout's fastest run counts, and why
# the line under the table gives each repeat's speed-up as well: run the chapter again and expect a
# speed-up about as far from this one as those repeats lie from each other. Packing computes the
# same tokens (a packed row is a padding-free row, only longer), so it should run about as fast as
# padding-free; the same line shows how close this run of the chapter put the two.
#
# ## Where the speed-up comes from
#
# If every part of a step cost the same per token, removing a padding share p would speed a step up
# by 1/(1-p). The sweep below times a few steps of each layout at several batch sizes and sets each
# measured speed-up beside that prediction. At `BATCH_SIZE` it reuses the runs above, which timed more
# steps, so the two tables agree there. Elsewhere its padding share is that of the examples it timed
# (the first `SWEEP_STEPS + WARMUP_STEPS` batches' worth of each size, taken in order; the `Trainer`
# groups them in its own random order, so the share is an estimate), not of the whole epoch: at 8 it
# is 0.218 in the sweep below and 0.206 in the padding-share table above.

# %%
sweep = []
for b in SWEEP_BATCH_SIZES:
    if b == BATCH_SIZE:
        speeds = {
            layout: runs[layout]["tokens_per_s"]
            for layout in ("padded", "padding_free")
        }
        share = pad_fraction(lengths, b)
    else:
        n = SWEEP_STEPS + WARMUP_STEPS
        rows = train_ids.select(range(min(len(train_ids), n * b)))
        speeds = {
            layout: max(
                train(layout, rows, n, b)["tokens_per_s"] for _ in range(REPEATS)
            )
            for layout in ("padded", "padding_free")
        }
        share = pad_fraction(lengths[: n * b], b)
    sweep.append(
        {
            "batch size": b,
            "padding share": share,
            "speed-up": speeds["padding_free"] / speeds["padded"],
        }
    )
sweep = pd.DataFrame(sweep).set_index("batch size")
sweep["1/(1-p)"] = 1 / (1 - sweep["padding share"])
sweep["measured vs 1/(1-p)"] = np.where(
    sweep["speed-up"] >= sweep["1/(1-p)"], "above", "below"
)
display(sweep.round(3))
fig, ax = plt.subplots(figsize=(5.5, 3.2))
ax.plot(
    sweep.index, sweep["1/(1-p)"], "s--", color="gray", label="1 / (1 - padding share)"
)
ax.plot(sweep.index, sweep["speed-up"], "o-", color="tab:blue", label="measured")
ax.axhline(1, color="black", lw=0.5)
ax.set(
    xscale="log",
    xlabel="batch size",
    ylabel="padding-free speed-up",
    title="Padding-free speed-up by batch size",
)
ax.minorticks_off()
ax.set_xticks(list(sweep.index), [str(b) for b in sweep.index])
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# The padding share changes little across these batch sizes (the table's first column), so the sweep
# shows mostly what the batch size does. A point below the prediction gains less than the padding
# removed: the parts of a step that do not grow with the tokens (the optimizer update, the Python
# around each layer, one attention call per example on a CPU) cost the same in both layouts and
# weigh most when a step holds few tokens, so small batches gain least. A point above it gains more:
# some part of the padded step costs more than its share of the tokens, here most likely the padded
# batch's masked attention, which works on every row at the longest row's length (we did not time it
# apart). Padding-free pays off with large batches of uneven examples. On a GPU with Flash
# Attention 2, on data whose lengths vary more than these, Hugging Face reports up to 2x the padded
# throughput with `DataCollatorWithFlattening`
# ([Packing with Flash Attention 2](https://huggingface.co/blog/packing-with-FA2), 2024).
#
# ## Why the losses agree, and when they would not
#
# Padded and padding-free runs see the same examples in the same steps, with the same positions and
# the same per-example attention, so the model computes the same function of the real tokens; only
# the pads are gone. Their held-out losses agree (4.0711 both, in the runs' table above): each step's
# gradient points the same way, and only its scale differs, by the one label per example that the
# padded step counts too many (the factor printed under the plots).
#
# Packing changes *which* examples share a step. Best-fit decreasing places the longest examples
# first, so a packed row holds examples of similar length, and in instruction data length goes with
# the task: a row is often one kind of example. A step of `PACKED_ROWS_PER_STEP` rows drawn at random
# mixes them again. Packing one long row per step instead (the same examples, tokens and steps) makes
# each step one kind of example, and the spread of example lengths within a step shows it:


# %%
def within_step_spread(groups) -> float:
    """Mean standard deviation of the example lengths that share a step."""
    return float(np.mean([np.std(g) for g in groups]))


def packed_steps(rows: Dataset, rows_per_step: int) -> list[list[int]]:
    """The example lengths of each step, rows drawn shuffled as the Trainer does."""
    order = np.random.default_rng(SEED).permutation(len(rows))
    return [
        sum((rows[int(i)]["seq_lengths"] for i in order[j : j + rows_per_step]), [])
        for j in range(0, len(rows), rows_per_step)
    ]


one_row, _ = packed_for_steps(1)
one_row_run = train("packed", one_row, steps, 1)
composition = pd.DataFrame(
    {
        "std of example lengths within a step": [
            within_step_spread(np.split(lengths, steps_per_epoch)),
            within_step_spread(packed_steps(packed_rows, PACKED_ROWS_PER_STEP)),
            within_step_spread(packed_steps(one_row, 1)),
        ],
        "held-out loss": [
            runs["padding_free"]["final_loss"],
            runs["packed"]["final_loss"],
            one_row_run["final_loss"],
        ],
    },
    index=[
        "random batches (padded, padding-free)",
        f"packed, {PACKED_ROWS_PER_STEP} rows a step",
        "packed, one row a step",
    ],
)
gap = composition["held-out loss"] / runs["padding_free"]["final_loss"] - 1
composition["vs padding-free"] = ["-"] + [f"{x:+.1%}" for x in gap.iloc[1:]]
display(
    composition.round({"std of example lengths within a step": 1, "held-out loss": 4})
)

# %% tags=["remove-cell"]
# recorded for the book's regression checks (not shown on the page)
record("packed_one_row.final_loss", round(one_row_run["final_loss"], 4))

# %% [markdown]
# One long row of similar examples per step trains worse on the same tokens (4.8% above
# padding-free); several rows per step keep the steps mixed (their spread of lengths, 6.2, is close
# to random batches' 6.6), and the loss stays within 0.3% of padding-free. When each step has room
# for one row only, shuffling within a window before packing should do the same job (not measured
# here).
#
# ## When packing leaks attention across examples
#
# Packing is only as good as the attention's knowledge of the boundaries. With a plain causal mask
# over a packed row, every example attends to the ones before it: a model trained that way learns
# from a context that never occurs at inference, and its training loss looks better than it is. Here
# is one flattened batch of held-out examples through the padding-free run's model, three ways: with
# our varlen attention; with transformers' `sdpa` given only the restarting `position_ids` (it
# detects the packed sequences from them and builds a block-diagonal mask, but only without an
# attention mask and without a generation cache); and with `sdpa` given an all-ones `attention_mask`
# as well, which tells it that the row is one sequence.

# %%
probe = runs["padding_free"]["model"].eval()
flat = {
    k: v.to(DEVICE) if torch.is_tensor(v) else v
    for k, v in flat_collator(held_out[:16]).items()
}
with torch.no_grad():
    probe.set_attn_implementation(varlen)
    kept = probe(**flat).loss.item()
    probe.set_attn_implementation("sdpa")
    plain = {
        "input_ids": flat["input_ids"],
        "labels": flat["labels"],
        "position_ids": flat["position_ids"],
        "use_cache": False,
    }
    detected = probe(**plain).loss.item()
    leaked = probe(
        **plain, attention_mask=torch.ones_like(flat["input_ids"])
    ).loss.item()
display(
    pd.DataFrame(
        {"loss": [kept, detected, leaked]},
        index=[
            "varlen attention (each example alone)",
            "sdpa, position_ids only (boundaries detected)",
            "sdpa, all-ones attention mask (leaks)",
        ],
    ).round(4)
)

# %% tags=["remove-cell"]
# recorded for the book's regression checks (not shown on the page)
record("leak.varlen_loss", round(kept, 4))
record("leak.detected_loss", round(detected, 4))
record("leak.all_ones_mask_loss", round(leaked, 4))

# %% [markdown]
# The first two agree: the boundaries were respected. The third differs, because each example
# could read the ones before it in the row. This model was trained with the boundaries, so the
# foreign context only confuses it and its loss rises; a model trained on leaky rows learns to lean
# on that context instead, a context it never has at inference. Either way nothing fails: only a
# number like this one shows the leak, so check it once for any new packing setup.
#
# ## What the numbers say

# %%
summary = {
    f"padding share of the padded batches of {BATCH_SIZE}": f"{pad_share:.1%}",
    "throughput over padded: padding-free / packed": (
        f"{speedup:.2f}x / {table.loc['packed', 'speed-up']:.2f}x"
    ),
    "padding-free speed-up of each repeat": repeats["padding_free"],
    "activation memory of a step, padded / padding-free (MiB)": (
        f"{table.loc['padded', 'activation_mb']:.0f} / "
        f"{table.loc['padding_free', 'activation_mb']:.0f}"
    ),
    "held-out losses of the three layouts, largest relative gap": f"{loss_spread:.2%}",
    "held-out loss, packed one row a step vs padding-free": (
        f"{one_row_run['final_loss']:.4f} vs {runs['padding_free']['final_loss']:.4f}"
    ),
    "loss with boundaries kept / an all-ones mask (leak)": f"{kept:.4f} / {leaked:.4f}",
}
with pd.option_context("display.max_colwidth", None):
    display(pd.DataFrame({"value": summary}))

# %% [markdown]
# - Padding is a large share of a padded batch whenever lengths vary, and it grows with the batch
#   size (the shares printed above, and the sweep).
# - Padding-free training computes only on real tokens: at large batches it is faster (how much,
#   against what the padding share predicts, the sweep shows) and holds less activation memory, with
#   the same examples, the same steps and the same loss. Packing gains about as much with rows of a
#   fixed length, and keeps the loss as long as the steps stay mixed.
# - Both need an attention that knows where each example ends; without it, packing leaks.
# - On a GPU the same chapter trains in mixed precision (`llmtut.precision`: fp16 with loss scaling
#   on a T4, bf16 from compute capability 8.0), with Flash Attention 2 where it runs (8.0 and up, with
#   `flash-attn` installed; otherwise the varlen attention above), and records the same figures. Its
#   repeats then agree to rounding rather than bit for bit.
