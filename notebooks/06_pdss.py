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
# # Privacy-preserving step-by-step distillation (PDSS)
#
# A big LLM behind an API can explain its answers; a small model of our own cannot, yet. *Step-by-step
# distillation* (DSS) trains the small model on the big one's rationales as well as on the labels,
# and small models learn more from that than from the labels alone. But asking the API means sending
# it our questions, and our questions may be private.
#
# **PDSS** (privacy-preserving DSS) sends the remote LLM a *perturbed* question instead: each word
# replaced, under a differential-privacy budget epsilon, by a random word drawn with a preference for
# words of similar meaning (**InferDPT**). The rationale that comes back answers the perturbed
# question, so one small LM is trained to do two jobs:
#
# - as an **encoder**, it perturbs a private question before it leaves the machine;
# - as a **decoder**, it reads the perturbed question, the rationale the LLM gave for it and the
#   private question, and writes the rationale for the private question.
#
# The source material is the PDSS tutorial of a federated-learning framework (FATE-LLM). Here every piece
# is in `llmtut` (a completions client, the InferDPT kit, the datasets and trainers), runs on plain
# transformers, and each step is measured. Where we differ from the source, on purpose:
#
# - its trainer needs the framework's whole runtime; ours is a plain transformers `Trainer`;
# - its dataset class has a key typo (`docoder`), and its 64-token limit cuts the decoder prompt; we
#   check the fields by name and measure the limits;
# - it masks every pad id, so a model whose pad is its eos never learns to stop; we mask by position;
# - a question is rendered differently: the source writes `Question:{{question}}` and then
#   `Choices:{{choices.text}}`, the choice texts as one Python list without labels
#   (`Choices:['dry palms', 'wet palms', ...]`), and its rationales end "the answer is 'dry palms'".
#   Ours is `llmtut.formats.format_question`: one "A. text" line per choice, under "Choices:", with
#   the record's own labels, and we ask for rationales that end "So the answer is dry palms." (the
#   answer is read from either style);
# - a teacher reply or a recovered rationale that is empty is dropped from the training data, and
#   counted, instead of being learned as "write nothing";
# - it never shows a result; we do:
#
# 1. a remote LLM on an OpenAI-compatible API, with a client that resumes an interrupted run;
# 2. InferDPT, and what each epsilon costs: words changed, teacher accuracy, words leaked;
# 3. the encoder-decoder SLM, trained on public questions with `alpha * L_encoder + (1 - alpha) * L_decoder`;
# 4. the PDSS flow on private questions, with a log of every request the server received, and reference
#    rationales from a separate server;
# 5. step-by-step distillation against a label-only baseline.
#
# **On a T4.** On a free Colab T4 (15 GB) the `hub` profile needs about 12 GiB of GPU memory at its
# fullest and about 21 minutes (estimated from the real models' shapes and its `hub` settings by
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
import gc
import itertools
import json
import math
import random
import time
from pathlib import Path

import evaluate
import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import display
from transformers import AutoModelForCausalLM, PrinterCallback, TrainingArguments

from llmtut import profiles
from llmtut.completions import CompletionsClient
from llmtut.evaluation import module_path, paired_difference
from llmtut.formats import ANSWER_CUE, answer_text, format_question, is_correct
from llmtut.generation import choice_log_likelihoods, generate_answers
from llmtut.inferdpt import InferDPTKit, changed_fraction
from llmtut.pdss import (
    DistillDataset,
    DistillTrainer,
    PDSSDataset,
    PDSSTrainer,
    build_distill_fields,
    build_fields,
    fit_limits,
    split_by_question,
)
from llmtut.precision import precision_for
from llmtut.privacy import (
    content_words,
    leak_rate,
    perturb_record,
    raw_prompts_seen,
    record_content_words,
)
from llmtut.report import record
from llmtut.serve import read_request_log, served
from llmtut.trainer_defaults import quiet_trainer_args

# %% [markdown]
# The chapter's parameters. `PROFILE = "hub"` runs it on ARC-Easy with Qwen2.5-0.5B as the small
# model, on a GPU; the teacher is any OpenAI-compatible server you name in `TEACHER_URL` (and
# `TEACHER`, the model it serves), or, without one, `transformers serve` started here on
# Qwen2.5-1.5B-Instruct, small enough to share a Colab GPU with the student. `PROFILE = "tiny"` runs
# offline on the tiny world: generated science questions, and a tiny teacher and student that
# `llmtut` trains itself. papermill overrides these values.

# %% tags=["parameters"]
PROFILE = profiles.default_profile()  # "hub" or "tiny"
SEED = 0
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
N_PUBLIC = None  # public questions: sent in the clear, train the encoder-decoder
N_TRAIN = None  # private questions the distilled student learns from (sent perturbed)
N_TEST = 100  # held-out private questions
N_SWEEP = None  # public questions of the epsilon sweep (the first ones)
# None (N_PUBLIC, N_TRAIN, N_SWEEP, LR): the profile's default below
EPSILON = 1.0  # the privacy budget of the PDSS run
EPSILONS = (0.5, 1.0, 3.0, 6.0)
ALPHA = 0.5  # weight of the encoder loss (PDSS) and of the Predict loss (distillation)
PDSS_EPOCHS = 6
DISTILL_EPOCHS = 10
LR = None  # None: the profile's default below
# an OpenAI-compatible base URL, e.g. "http://localhost:8000/v1"; None: serve TEACHER
# here
TEACHER_URL = None
TEACHER = None  # the model name the server serves; None: the profile's teacher
# a server we trust with private questions, for reference rationales; None: serve
# TEACHER
REFERENCE_URL = None
OUT_DIR = "out/06_pdss"

# %%
profiles.check_profile(PROFILE)
# hub: fewer questions than tiny, so that the teacher's 800 or so completions fit a
# Colab session on a T4
defaults = {
    "tiny": {"lr": 3e-3, "n_public": 200, "n_train": 200, "n_sweep": 100},
    "hub": {"lr": 2e-5, "n_public": 150, "n_train": 150, "n_sweep": 50},
}[PROFILE]
lr = LR or defaults["lr"]
N_PUBLIC, N_TRAIN = N_PUBLIC or defaults["n_public"], N_TRAIN or defaults["n_train"]
N_SWEEP = N_SWEEP or defaults["n_sweep"]
torch.manual_seed(SEED)
out_dir = Path(OUT_DIR)
out_dir.mkdir(parents=True, exist_ok=True)
print(
    f"The {PROFILE} profile on the {DEVICE}, seed {SEED}, learning rate {lr}: "
    f"{N_PUBLIC} public questions, {N_TRAIN} private training questions, up to "
    f"{N_TEST} private test questions, and a privacy budget of epsilon {EPSILON}."
)

# %% [markdown]
# ## Public and private questions
#
# The source samples the first half of ARC-Easy's training split: grade-school science questions with
# four choices and an `answerKey`. The tiny world has ARC-style questions generated from a small
# knowledge base of science facts ("A lever is a stiff bar that turns on a fixed point."), with the
# same fields. We split them into three groups that share no question:
#
# - **public** questions, which may be sent to the LLM as they are. As in the source, the
#   encoder-decoder learns from them: the decoder's target is the LLM's rationale for the clean
#   question, which only a question sent in the clear can give;
# - **private training** questions, which leave this machine only perturbed, through the PDSS flow;
#   the distilled student learns from the rationales that flow recovers;
# - **private test** questions, for measuring the flow and the student.
#
# A tiny-world question is asked in a few wordings, so we hold out whole *wordings*: no test question
# is ever seen in training, but each is about a fact that some private training question is about.
# (Held out by *fact* instead, the test would ask about facts that no training question is about,
# which a tiny model cannot know; this page does not measure that harder test.)

# %%
records = profiles.load_science_questions(PROFILE, seed=SEED)
if PROFILE == "tiny":
    texts = sorted({r["question"] for r in records})
    random.Random(SEED).shuffle(texts)
    held_out = set(texts[: len(texts) // 4])
    public_texts = set(texts[len(texts) // 4 :: 2])  # half of the other wordings
    rng = random.Random(SEED)
    public = rng.sample([r for r in records if r["question"] in public_texts], N_PUBLIC)
    train = rng.sample(
        [r for r in records if r["question"] not in held_out | public_texts], N_TRAIN
    )
    train_facts = {r["fact"] for r in train}
    test_pool = [
        r for r in records if r["question"] in held_out and r["fact"] in train_facts
    ]
    test = rng.sample(test_pool, min(N_TEST, len(test_pool)))
else:  # ARC repeats some question texts: a repeat lands in the first group only
    test, train, public = split_by_question(records, N_TEST, N_TRAIN, N_PUBLIC)
groups = {"public": public, "private training": train, "private test": test}
for (name_a, a), (name_b, b) in itertools.combinations(groups.items(), 2):
    assert not {r["question"] for r in a} & {r["question"] for r in b}, (
        f"{name_a} and {name_b} share a question"
    )
private_questions = [r["question"] for r in train + test]
display(
    pd.DataFrame(
        {
            "questions": [len(g) for g in groups.values()],
            "distinct wordings": [
                len({r["question"] for r in g}) for g in groups.values()
            ],
            "facts": [
                len({r.get("fact", r["question"]) for r in g}) for g in groups.values()
            ],
        },
        index=list(groups),
    )
)
print(format_question(public[0]))

# %% [markdown]
# ## The remote LLM
#
# The teacher sits behind an OpenAI-compatible `/v1/completions` endpoint. In the tiny profile we
# start one here: `llmtut.serve.served` runs `transformers serve` on the tiny teacher (a
# `Qwen2ForCausalLM` with a chat template, trained to answer the tiny world's questions with a
# rationale), waits until it answers, and stops it when the chapter ends. A small proxy in front of it
# writes every request it receives to `server_requests.jsonl`: that log, not our own bookkeeping, is
# what the privacy numbers below are computed from.
#
# `CompletionsClient` sends one prompt per request (`transformers serve` takes one prompt per
# request), a few at a time, and returns the completions in prompt order. It retries timeouts and
# server errors with backoff, and appends each finished completion to a JSONL cache keyed by model,
# prompt and parameters, so a run that dies half-way resumes without paying twice.

# %%
ONE_SHOT = (
    "Answer the question in one or two sentences, then write "
    '"So the answer is" and the text of one choice.\n\n'
    "Question: Which tool is used to measure temperature?\n"
    "Choices:\nA. ruler\nB. thermometer\nC. balance\nD. stopwatch\n"
    "Answer: A thermometer measures how hot or cold something is. "
    "So the answer is thermometer.\n\n"
)


def teacher_prompt(question_text: str) -> str:
    """What we send the teacher for a formatted question: the tiny teacher was trained
    on this layout; a Hub model gets an instruction and one worked example first."""
    prefix = "" if PROFILE == "tiny" else ONE_SHOT
    return prefix + question_text + ANSWER_CUE


teacher_name = TEACHER or profiles.resolve("pdss_teacher", PROFILE)
request_log = out_dir / "server_requests.jsonl"
request_log.unlink(missing_ok=True)
cache_path = out_dir / "completions.jsonl"
# A fresh cache, so that the request log shows every request of this run. To resume an
# interrupted run instead, comment this line out: finished completions are then read
# back, not requested again.
cache_path.unlink(missing_ok=True)
client_log = (
    out_dir / "client_requests.jsonl"
)  # every request the client sends, each attempt
client_log.unlink(missing_ok=True)
# closing it stops a server started here; start_teacher enters it again
server = contextlib.ExitStack()


def teacher_client(
    servers: contextlib.ExitStack, url: str | None, log: Path, cache: Path, **kwargs
) -> CompletionsClient:
    """A client of the teacher at `url` or, with None, of a server started here on the
    teacher model (stopped when `servers` closes), which logs each request to `log`."""
    base_url = url or servers.enter_context(
        # a Hub model is downloaded when the server first starts: give it time
        served(
            teacher_name,
            device=DEVICE,
            request_log=log,
            offline=PROFILE == "tiny",
            timeout_s=120 if PROFILE == "tiny" else 1800,
        )
    )
    return CompletionsClient(
        model=teacher_name,
        base_url=base_url,
        max_tokens=60,
        stop=["\n"],
        max_workers=8,
        cache_path=cache,
        **kwargs,
    )


def start_teacher() -> CompletionsClient:
    """Start the teacher server here (unless TEACHER_URL names one elsewhere) and return
    a client for it. Each start listens on a new port; the cache and both logs are
    appended to, never cleared."""
    return teacher_client(
        server, TEACHER_URL, request_log, cache_path, log_path=client_log
    )


client = start_teacher()
shown_name = teacher_name
if TEACHER is None and PROFILE == "tiny":
    # the tiny teacher's name is a folder of the local cache: we name its role instead
    shown_name = "the tiny world's teacher"
print(f"The teacher is ready: {shown_name}.")

# %% [markdown]
# First, the public questions, as they are. The teacher's rationales for them are what the decoder
# will learn to recover. The answer is read from the rest of the line after the rationale's last
# "the answer is", and compared with the right choice's text ignoring case, quotes and final periods
# (`llmtut.formats.is_correct`).


# %%
def is_right(rationales: list[str], recs: list[dict]) -> list[bool]:
    """Whether each rationale ends with the record's answer ("So the answer is X.")."""
    return [is_correct(t, r) for t, r in zip(rationales, recs, strict=True)]


def accuracy(rationales: list[str], recs: list[dict]) -> float:
    return sum(is_right(rationales, recs)) / len(recs)


t0 = time.perf_counter()
clean_public = client.complete(
    [teacher_prompt(format_question(r)) for r in public], desc="public, clean"
)
print(f"{len(public)} requests in {time.perf_counter() - t0:.1f} s")
acc_clean = accuracy(clean_public[:N_SWEEP], public[:N_SWEEP])
print(
    f"the teacher answers {acc_clean:.0%} of the first {N_SWEEP} public questions "
    "right\n"
)
print(teacher_prompt(format_question(public[0])), clean_public[0].strip())

# %% tags=["remove-cell"]
# recorded for the book's regression checks (not shown on the page)
record("teacher.accuracy.clean", acc_clean)

# %% [markdown]
# ## InferDPT: perturbing a question under a privacy budget
#
# The InferDPT kit is built from the small model's input embeddings: its vocabulary is the tokens
# that begin a word and are alphabetic, at least four letters long, and similarity is the cosine of
# their embeddings, computed with torch when needed instead of the N x N similarity files of the
# original InferDPT code.
# A token that begins a word is not always a whole word: a small tokenizer splits rarer words, and
# their first pieces (the sample below shows some) are in the kit too; pieces from inside a word,
# such as "ects" of "insects", are left out. For each word of the question, `perturb`:
#
# 1. adds Laplace noise of scale delta_f / (epsilon / 2) to its embedding (delta_f: the range of each
#    embedding dimension over the vocabulary);
# 2. takes as candidates every word at least as similar to it as the noisy vector is;
# 3. draws one candidate with probability proportional to exp(epsilon / 2 * similarity).
#
# Short words, numbers and punctuation pass through, and so does the multiple-choice layout: we
# perturb the question and the choice texts, not "Question:" and "Choices:". A smaller epsilon means
# more noise, a larger candidate set and flatter weights. The same seed gives the same perturbation.

# %%
slm, tokenizer = profiles.load_pretrained(
    "pdss_student", PROFILE, AutoModelForCausalLM, DEVICE
)
kit = InferDPTKit.from_model(slm, tokenizer, word_initial_only=True)
kit.save(out_dir / "inferdpt_kit")
assert InferDPTKit.load(out_dir / "inferdpt_kit").perturb(
    "Which planet is red?", 1.0, 0
) == kit.perturb("Which planet is red?", 1.0, 0)
coverage = sum(kit.coverage(r["question"]) for r in public) / len(public)
print(
    f"{len(kit.words)} words in the kit; it can perturb {coverage:.0%} of the "
    "questions' long words"
)
print("a sample of the kit:", ", ".join(random.Random(SEED).sample(kit.words, 12)))
# the longest word of the first question the kit can perturb, in the kit's spelling
# ("Which" -> "which")
word = next(w for r in public if (w := kit.longest_word(r["question"])) is not None)
draws = {}
for eps in EPSILONS:
    cands = kit.candidates(word, eps, SEED)
    top = sorted(cands.items(), key=lambda kv: -kv[1])[:3]
    draws[eps] = {
        "candidates": len(cands),
        f"p({word})": round(cands[word], 4),
        "p(3 most likely)": round(sum(p for _, p in top), 4),
        "3 most likely": ", ".join(w for w, _ in top),
    }
display(pd.DataFrame(draws).T.rename_axis("epsilon"))

# %% [markdown]
# The table is one word's draw at each budget. At epsilon 0.5, 1 and 3 the draw is spread over
# hundreds of candidates, and the word keeps itself with a chance of at most a few percent:
# exp(epsilon/2 * similarity) hardly favours the similar words when epsilon/2 is small. The word
# itself is the likeliest single draw at every budget (first of the three most likely), but below
# epsilon 6 its chance stays under 2% (0.0149 at epsilon 3). Only at epsilon 6 does the candidate set
# shrink to a few dozen (38) and the word's own chance rise to about one in seven (0.1436).

# %% [markdown]
# ### The epsilon sweep
#
# For each budget, we perturb the first public questions, send them to the teacher, and grade its
# answer against the *original* question's answer. "changed" is the share of the question's words that
# differ; "leaked" the share of the content words (four letters or more, not function words) of the
# question and its choices that still appear in what was sent. The layout's own words, such as
# "Question" and "Choices", are in every request whatever the question, so they are not counted
# (`llmtut.privacy.record_content_words`).

# %%
sweep_recs = public[:N_SWEEP]
original_texts = [format_question(r) for r in sweep_recs]
sweep = {}
for eps in (None, *EPSILONS):
    recs = [perturb_record(kit, r, eps, (SEED, i)) for i, r in enumerate(sweep_recs)]
    sent = [format_question(r) for r in recs]
    answers = client.complete([teacher_prompt(t) for t in sent], desc=f"epsilon={eps}")
    sweep["none" if eps is None else eps] = {
        "words changed": sum(map(changed_fraction, original_texts, sent)) / len(sent),
        # the record's own words, not the layout's: leak_rate of the records
        "content words leaked": leak_rate(sweep_recs, sent),
        "teacher accuracy": accuracy(answers, sweep_recs),
    }
    if eps == EPSILON:
        print(
            f"At epsilon {eps}, the first question as the teacher receives it, and "
            f"its answer:\n{sent[0]}Answer: {answers[0].strip()}\n"
        )
sweep_table = pd.DataFrame(sweep).T.rename_axis("epsilon")
display(sweep_table.round(3))

# %% tags=["remove-cell"]
# recorded for the book's regression checks (not shown on the page)
record("teacher.accuracy.eps1", sweep[1.0]["teacher accuracy"])
record("inferdpt.changed_frac.eps1", round(sweep[1.0]["words changed"], 4))

# %%
eps_values = [e for e in sweep if e != "none"]
fig, ax = plt.subplots(figsize=(8.5, 4))
# each share without perturbation is a line of the share's colour, with its own dashes
# and a label above or below it: two of them (1.00 and 0.99) lie on top of each other
for column, style, dashes, where in (
    ("words changed", "o-", ":", "below"),
    ("content words leaked", "s-", "--", "above"),
    ("teacher accuracy", "^-", "-.", "below"),
):
    (line,) = ax.plot(
        eps_values, [sweep[e][column] for e in eps_values], style, label=column
    )
    value = sweep["none"][column]
    ax.axhline(value, color=line.get_color(), ls=dashes, lw=1)
    ax.annotate(
        f"{column}, no perturbation: {value:.2f}",
        (0.01, value),
        xycoords=("axes fraction", "data"),
        xytext=(0, 3 if where == "above" else -3),
        textcoords="offset points",
        va="bottom" if where == "above" else "top",
        color=line.get_color(),
        fontsize=9,
    )
ax.set(
    xscale="log",
    xlabel="privacy budget epsilon (log scale)",
    ylabel="share",
    ylim=(-0.12, 1.12),
)
# a log axis labels its minor ticks too ("4 x 10^0"); the budgets are the ticks
ax.minorticks_off()
ax.set_xticks(eps_values, [str(e) for e in eps_values])
ax.legend(fontsize=9, loc="center left", bbox_to_anchor=(1.02, 0.5))
plt.tight_layout()
plt.show()

# %% [markdown]
# At epsilon 1 the teacher does far worse than a random pick among the four choices (25%): it answers
# the question it sees, which is about something else, and its answer need not be one of the original
# choices (above: "telescope"). From 0.5 to 3 the words changed and the teacher's accuracy move little,
# for the reason the draw table above shows: at those budgets nearly every word the kit knows is
# replaced by an unrelated one (about half of all words change; the rest are short words and layout,
# which pass through). So few of a question's own words get through: 3% of them at epsilon 0.5, 5% at
# epsilon 1 and 12% at epsilon 3. Only at epsilon 6 do many get through: the leaked share rises to 0.41
# and the teacher's accuracy to 0.16. That is the trade PDSS has to work with: the rationale that
# comes back for a private question is about a different question, and the decoder has to make up
# the difference.
#
# ## The four fields
#
# Each public question gives one row of four fields, rendered with the source's Jinja templates
# (`llmtut.pdss`). The templates call the question the model protects "the original question": at
# deployment it is a private one.
#
# - `encoder_in` -> `encoder_out`: the question -> its InferDPT perturbation at `EPSILON`;
# - `decoder_in` -> `decoder_out`: the perturbed question, the teacher's rationale for it and the
#   question -> the teacher's rationale for the question itself (sent in the clear above).
#
# `PDSSDataset` tokenizes prompt and target apart, masks the prompt with -100, and ends each target
# with the eos as a label, even where eos and pad are the same token (the source masks every pad id,
# so its model never learns to stop). `fit_limits` measures the longest prompt and target of each
# task, so nothing is cut; the source's 64 tokens would cut every decoder prompt. A row whose target is
# empty (a teacher reply that was empty, or began with a newline and so was cut to nothing by the
# client's `stop=["\n"]`) would teach the model to write nothing: the dataset drops it, and counts it.

# %%
p_public = [perturb_record(kit, r, EPSILON, (SEED, i)) for i, r in enumerate(public)]
p_rationales = client.complete(
    [teacher_prompt(format_question(r)) for r in p_public], desc="public, perturbed"
)
rows = [
    build_fields(format_question(r), format_question(p), pr, cr)
    for r, p, pr, cr in zip(public, p_public, p_rationales, clean_public, strict=True)
]
limits = fit_limits(rows, tokenizer)
pdss_data = PDSSDataset(
    rows, tokenizer, **limits
)  # drops (and counts) rows whose clean rationale is empty
n_dropped = pdss_data.n_dropped
print(
    f"{n_dropped} of {len(rows)} rows dropped: the teacher's rationale for the clean "
    "question was empty"
)
decoder_prompt_lens = [
    len(tokenizer(r["decoder_in"])["input_ids"]) for r in pdss_data.rows
]
over_64 = sum(n > 64 for n in decoder_prompt_lens) / len(pdss_data)
print(
    "longest prompt / target, in tokens: encoder "
    f"{limits['max_prompt_len']['encoder']} / {limits['max_target_len']['encoder']}, "
    f"decoder {limits['max_prompt_len']['decoder']} / "
    f"{limits['max_target_len']['decoder']}\n"
    f"decoder prompts: {min(decoder_prompt_lens)}-{max(decoder_prompt_lens)} tokens; "
    f"over the source's 64: {over_64:.0%}"
)
item = pdss_data[0]
# the decoder learns to stop: its last label is the end-of-sequence token
assert item["decoder_labels"][-1] == tokenizer.eos_token_id
print(
    f"row 0: encoder {len(item['encoder_input_ids'])} tokens, "
    f"{sum(t != -100 for t in item['encoder_labels'])} labelled; "
    f"decoder {len(item['decoder_input_ids'])} tokens, "
    f"{sum(t != -100 for t in item['decoder_labels'])} labelled, "
    "the last of them the end-of-sequence token\n"
)
print(pdss_data.rows[0]["decoder_in"] + pdss_data.rows[0]["decoder_out"])

# %% tags=["remove-cell"]
# recorded for the book's regression checks (not shown on the page)
record("decoder.truncation_rate", pdss_data.truncation_rate)
record("teacher.n_empty_rationales_dropped", n_dropped)

# %% [markdown]
# ## Training the encoder-decoder
#
# `PDSSTrainer` is a transformers `Trainer` whose `compute_loss` runs the model on the encoder half and
# on the decoder half of each batch (padded separately by `PDSSCollator`) and returns
# `alpha * L_encoder + (1 - alpha) * L_decoder`; both parts are logged. `remove_unused_columns=False`
# keeps the two halves in the batch, since the model's `forward` takes neither by name. The losses are
# logged once per epoch, and at the last step, so the table below always ends with the final loss.
#
# An update is a batch of 16 rows in both profiles. On a T4 the logits of 16 rows over Qwen's 151,936-token
# vocabulary would not fit beside the model's weights, gradients and AdamW state, so `hub` takes 2 rows at
# a time and accumulates the gradients of 8, recomputing activations in the backward pass (gradient
# checkpointing) instead of keeping them: the update is the same batch of 16. The teacher server, when
# this chapter started it, is stopped while a student trains, so that both fit a T4 (15 GB), and
# started again for the PDSS flow.

# %%
BATCH_SIZE = 16  # rows per optimizer step, in both profiles
MICRO_BATCH = {"tiny": BATCH_SIZE, "hub": 2}[PROFILE]  # rows per forward pass
# hub recomputes the activations in the backward pass (gradient checkpointing) instead
# of keeping them
CHECKPOINTING = {
    "gradient_checkpointing": True,
    "gradient_checkpointing_kwargs": {"use_reentrant": False},
}


def training_args(name: str, epochs: int, n_rows: int) -> TrainingArguments:
    steps_per_epoch = math.ceil(n_rows / BATCH_SIZE)  # optimizer steps
    return TrainingArguments(
        output_dir=str(out_dir / name),
        num_train_epochs=epochs,
        per_device_train_batch_size=MICRO_BATCH,
        gradient_accumulation_steps=BATCH_SIZE // MICRO_BATCH,
        **(CHECKPOINTING if PROFILE == "hub" else {}),
        learning_rate=lr,
        lr_scheduler_type="cosine",
        warmup_steps=10,
        logging_steps=steps_per_epoch,
        data_seed=SEED,
        remove_unused_columns=False,
        **quiet_trainer_args(SEED, DEVICE),
        **precision_for(DEVICE).trainer_args(),
    )


# the teacher leaves the GPU while the student trains (with TEACHER_URL, nothing to
# stop)
server.close()
tokenizer.padding_side = "right"
pdss_trainer = PDSSTrainer(
    model=slm,
    args=training_args("pdss", PDSS_EPOCHS, len(pdss_data)),
    train_dataset=pdss_data,
    processing_class=tokenizer,
    alpha=ALPHA,
)
pdss_trainer.remove_callback(PrinterCallback)  # the table below shows the log
t0 = time.perf_counter()
pdss_trainer.train()
print(f"trained in {time.perf_counter() - t0:.0f} s")
pdss_log = pdss_trainer.loss_history()  # a task of weight 0 (ALPHA 0 or 1) shows NaN
display(
    pdss_log[["epoch", "loss", "encoder_loss", "decoder_loss"]]
    .round(3)
    .astype({"epoch": int})
    .rename(
        columns={
            "loss": "weighted loss",
            "encoder_loss": "encoder loss",
            "decoder_loss": "decoder loss",
        }
    )
    .set_index("epoch")
)

# %% [markdown]
# The decoder's loss falls fast, from 3.508 to 0.317: its target is a fluent rationale about the
# question in its prompt. The encoder's ends much higher (1.960), and should: its targets are random
# draws, so the best it can do is learn the *distribution* of InferDPT's replacements, which is what
# we sample from below.
#
# ## The PDSS flow on private questions
#
# For each private question: the SLM **encoder** samples a perturbed question; only that goes to the
# server; the SLM **decoder** reads the perturbed question, the teacher's rationale and the private
# question, and writes the recovered rationale. We run the flow on the test questions, to measure it,
# and on the private training questions, whose recovered rationales the distilled student learns from
# below.


# %%
def pdss_flow(recs: list[dict], seed: int) -> dict:
    questions = [format_question(r) for r in recs]
    encoder_prompts = [build_fields(q, "", "", "")["encoder_in"] for q in questions]
    perturbed = generate_answers(
        slm,
        tokenizer,
        encoder_prompts,
        limits["max_target_len"]["encoder"],
        do_sample=True,
        seed=seed,
        batch_size=64,
    )
    sent = [teacher_prompt(p.strip() + "\n") for p in perturbed]
    answers = client.complete(sent, desc="PDSS flow")
    decoder_prompts = [
        build_fields(q, p, a, "")["decoder_in"]
        for q, p, a in zip(questions, perturbed, answers, strict=True)
    ]
    recovered = generate_answers(
        slm,
        tokenizer,
        decoder_prompts,
        limits["max_target_len"]["decoder"],
        batch_size=64,
    )
    return {
        "private": questions,
        "perturbed": [p.strip() for p in perturbed],
        "sent": sent,
        "teacher": [a.strip() for a in answers],
        "recovered": recovered,
    }


def requests_so_far() -> list[str]:
    """The prompts the server received (its log, when this chapter started it) or, for a
    server elsewhere, the prompts the client sent it."""
    if TEACHER_URL is None:
        return [entry["body"]["prompt"] for entry in read_request_log(request_log)]
    return (
        [json.loads(line)["prompt"] for line in client_log.read_text().splitlines()]
        if client_log.exists()
        else []
    )


client = (
    start_teacher()
)  # again, for the PDSS flow: a new port, the same cache and logs
n_before = len(requests_so_far())
t0 = time.perf_counter()
flow = pdss_flow(test, SEED)
train_flow = pdss_flow(train, SEED + 1)
server.close()  # the teacher's last request: it leaves the GPU
# The PDSS student is done: each training below loads a fresh one. Its trainer (with
# AdamW's state) goes, and the student itself leaves the GPU.
del pdss_trainer
slm.to("cpu")
gc.collect()  # a Trainer holds reference cycles: collect them now, not later
if DEVICE == "cuda":
    torch.cuda.empty_cache()
print(f"{len(test) + len(train)} private questions in {time.perf_counter() - t0:.0f} s")
pd.set_option("display.max_colwidth", 200)
display(
    pd.DataFrame(
        {
            "private question": [r["question"] for r in test],
            "what the server received": [p.split("\n")[0] for p in flow["perturbed"]],
            "teacher's rationale": flow["teacher"],
            "recovered rationale": flow["recovered"],
        }
    )
    # a wording can be drawn twice: show each once
    .drop_duplicates("private question")
    .head(6)
)

# %% [markdown]
# What did the server see? The proxy's log holds every request body it received in this chapter,
# the public questions and the flow's alike (with a server elsewhere, `TEACHER_URL`, we can only read
# the client's log of what it sent). We check that the flow's part is exactly what the flow sent,
# count the requests anywhere in the log that contain a private question verbatim, and measure the
# content words of the private questions and their choices that got through (as in the sweep, not
# the layout's), against sending them as they are.

# %%
all_received = requests_so_far()
received, sent = all_received[n_before:], flow["sent"] + train_flow["sent"]
same = set(received) == set(sent)
print(
    f"{len(all_received)} requests in the server's log, {len(received)} of them from "
    f"the PDSS flow on {len(private_questions)} private questions; they are "
    f"{'exactly' if same else 'NOT'} the prompts the flow sent."
)
n_verbatim = raw_prompts_seen(private_questions, all_received)
# the private records' own words (question and choices), not the prompt's layout,
# against the prompt sent for each; and against sending each one in the clear
private_recs = test + train  # the order of `sent`
leaked_eps1 = round(leak_rate(private_recs, sent), 4)
leaked_clear = round(
    leak_rate(private_recs, [teacher_prompt(format_question(r)) for r in private_recs]),
    4,
)
print(
    f"Requests with a private question verbatim: {n_verbatim}. Content words of the "
    f"private questions and their choices that got through: {leaked_eps1:.1%} "
    f"(sent in the clear: {leaked_clear:.0%})."
)
words = sorted(record_content_words(test[0]))
got = [w for w in words if w in content_words(flow["sent"][0])]
print(
    f"The first test question's content words: {', '.join(words)}. "
    + (
        f"The server received {', '.join(got)}."
        if got
        else "The server received none of them."
    )
)

# %% tags=["remove-cell"]
# recorded for the book's regression checks (not shown on the page)
record("privacy.raw_prompts_seen_by_server", n_verbatim)
record("privacy.leak_rate.eps1", leaked_eps1)
record("privacy.leak_rate.none", leaked_clear)

# %% [markdown]
# And what did the decoder recover? To score it we need a reference: the teacher's rationale for each
# private test question as it is. Asking the deployment server would send the private questions in
# the clear, and its log would show it. So the reference comes from a separate **reference server**,
# one we trust with the private questions: here a second `transformers serve` of the same teacher
# model, with its own log in `reference/`; in practice a model you run yourself, or references written
# by hand (`REFERENCE_URL` names one). ROUGE-L against the reference measures how close each
# rationale gets: the teacher's answer to the perturbed question, and the decoder's recovery of it.

# %%
reference_dir = out_dir / "reference"
reference_dir.mkdir(exist_ok=True)
reference_log, reference_cache = (
    reference_dir / "server_requests.jsonl",
    reference_dir / "completions.jsonl",
)
reference_log.unlink(missing_ok=True)
reference_cache.unlink(missing_ok=True)
with contextlib.ExitStack() as reference_server:
    reference_client = teacher_client(
        reference_server, REFERENCE_URL, reference_log, reference_cache
    )
    reference = [
        c.strip()
        for c in reference_client.complete(
            [teacher_prompt(format_question(r)) for r in test], desc="reference"
        )
    ]
assert len(requests_so_far()) == len(all_received), (
    "a reference request reached the deployment server"
)
print(
    f"{len(reference)} reference rationales, {accuracy(reference, test):.0%} of them "
    f"right; the deployment server's log still holds {len(all_received)} requests"
)


def uses_question_word(rationales: list[str], recs: list[dict]) -> list[float]:
    """1.0 for each rationale that uses a content word of its question, else 0.0."""
    return [
        float(bool(content_words(t) & content_words(r["question"])))
        for t, r in zip(rationales, recs, strict=True)
    ]


def on_topic(rationales: list[str], recs: list[dict]) -> float:
    """The share of rationales that use at least one content word of their question."""
    return sum(uses_question_word(rationales, recs)) / len(recs)


rouge = evaluate.load(module_path("rouge"))
rouge_recovered = round(
    rouge.compute(predictions=flow["recovered"], references=reference)["rougeL"], 4
)
rouge_perturbed = round(
    rouge.compute(predictions=flow["teacher"], references=reference)["rougeL"], 4
)
recovery = pd.DataFrame(
    {
        "ROUGE-L vs reference": [rouge_perturbed, rouge_recovered],
        "uses a word of the private question": [
            on_topic(flow["teacher"], test),
            on_topic(flow["recovered"], test),
        ],
        "answer right": [
            accuracy(flow["teacher"], test),
            accuracy(flow["recovered"], test),
        ],
    },
    index=["teacher, perturbed question", "SLM decoder, recovered"],
)
display(recovery.round(3))
# the same test questions scored twice: a paired difference of each rationale's ROUGE-L,
# with a 95% bootstrap interval over the wordings (a wording's rows averaged first)
wordings = [r["question"] for r in test]
rouge_each = {
    name: rouge.compute(
        predictions=flow[name], references=reference, use_aggregator=False
    )["rougeL"]
    for name in ("recovered", "teacher")
}
rouge_diff = paired_difference(
    rouge_each["recovered"], rouge_each["teacher"], seed=SEED, groups=wordings
)
print(
    f"ROUGE-L, each of the {rouge_diff['n']} test wordings weighed once: recovered "
    f"{rouge_diff['mean_before']:.3f}, teacher's {rouge_diff['mean_after']:.3f}, "
    f"difference {rouge_diff['mean_diff']:+.3f} (95% interval "
    f"{rouge_diff['ci95_low']:+.3f} to {rouge_diff['ci95_high']:+.3f})"
)
topic_diff = paired_difference(
    *(uses_question_word(flow[name], test) for name in ("recovered", "teacher")),
    seed=SEED,
    groups=wordings,
)
print(
    f"uses a word of the private question, each wording weighed once: recovered "
    f"{topic_diff['mean_before']:.2f}, teacher's {topic_diff['mean_after']:.2f}, "
    f"difference {topic_diff['mean_diff']:+.2f} (95% interval "
    f"{topic_diff['ci95_low']:+.2f} to {topic_diff['ci95_high']:+.2f})"
)

# %% tags=["remove-cell"]
# recorded for the book's regression checks (not shown on the page)
record("recovery.rougeL_recovered", rouge_recovered)
record("recovery.rougeL_perturbed", rouge_perturbed)

# %% [markdown]
# The decoder's rationales score a little higher against the reference than the teacher's (ROUGE-L
# 0.460 against 0.427), but not by more than chance would give: weighed by wording (the test's 100
# questions share 37 wordings), the difference is +0.033 with a 95% interval from -0.024 to +0.089,
# which includes zero. They do use a word of the private question more often (0.23 against 0.09;
# weighed by wording 0.29 against 0.10, a difference of +0.19 whose 95% interval, +0.02 to +0.35,
# lies above zero), but most are still about another topic (the rows above show some, one per wording), and none ends
# with the right answer (0.00):
# the teacher's rationale for a question perturbed at epsilon 1 is about something else, and the tiny
# SLM knows few facts of its own for a wording it never saw. On the Hub we would expect a real LLM's
# rationale to carry more through the noise, and a 0.5B model knows more; this page does not measure
# it.
#
# ## Step-by-step distillation
#
# Now the small model learns the task from what PDSS recovered for the private training questions. We
# train a fresh copy of the SLM on two tasks with the source's prefixes: `Predict:` the answer and
# `Explain:` the recovered rationale, with `alpha * L_predict + (1 - alpha) * L_explain`. The baseline
# is the same trainer at `alpha = 1`: labels only. Both are scored on the held-out questions by the
# answer they *write* after `Predict:` (exact match with the right choice, as DSS scores them), and, as
# a second view, by which of the four choices they find most likely.

# %%
distill_rows = [
    build_distill_fields(format_question(r), answer_text(r), rationale)
    for r, rationale in zip(train, train_flow["recovered"], strict=True)
]
print(
    f"{accuracy(train_flow['recovered'], train):.0%} of the {len(train)} recovered "
    "training rationales end with the right answer"
)
# one dataset for both trainings (the student's tokenizer); it drops, and counts, the
# rows whose recovered rationale is empty (the SLM ended it at once)
distill_data = DistillDataset(
    distill_rows,
    tokenizer,
    **fit_limits(distill_rows, tokenizer, ("predict", "explain")),
)
n_empty_recovered = distill_data.n_dropped
print(
    f"{n_empty_recovered} of {len(distill_rows)} rows dropped: their recovered "
    "rationale is empty\n"
)
print(distill_data.rows[0]["explain_in"] + distill_data.rows[0]["explain_out"])

# %% tags=["remove-cell"]
# recorded for the book's regression checks (not shown on the page)
record("distill.n_empty_rationales_dropped", n_empty_recovered)


# %%
def distill(alpha: float, name: str) -> dict:
    # the previous student (and its optimizer state) must be gone before this one loads
    gc.collect()
    model, tok = profiles.load_pretrained(
        "pdss_student", PROFILE, AutoModelForCausalLM, DEVICE
    )
    tok.padding_side = "right"
    trainer = DistillTrainer(
        model=model,
        args=training_args(name, DISTILL_EPOCHS, len(distill_data)),
        train_dataset=distill_data,
        processing_class=tok,
        alpha=alpha,
    )
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    prompts = [
        build_distill_fields(format_question(r), "", "")["predict_in"] for r in test
    ]
    written = generate_answers(model, tok, prompts, max_new_tokens=16, batch_size=64)
    picked = []
    for prompt, r in zip(prompts, test, strict=True):
        scores = choice_log_likelihoods(model, tok, prompt, r["choices"]["text"])
        picked.append(r["choices"]["text"][scores.index(max(scores))])
    answers = [answer_text(r) for r in test]
    return {
        "written": written,
        "right (written answer)": [
            w == a for w, a in zip(written, answers, strict=True)
        ],
        "right (most likely choice)": [
            p == a for p, a in zip(picked, answers, strict=True)
        ],
        "writes one of the four choices": [
            w in r["choices"]["text"] for w, r in zip(written, test, strict=True)
        ],
    }


t0 = time.perf_counter()
results = {
    f"step-by-step (alpha={ALPHA})": distill(ALPHA, "distill"),
    "label only (alpha=1)": distill(1.0, "label"),
}
print(f"two trainings in {time.perf_counter() - t0:.0f} s")
dss, label_only = results.values()
# per question, as recorded (the table below weighs each wording once instead)
dss_acc = sum(dss["right (written answer)"]) / len(test)
label_acc = sum(label_only["right (written answer)"]) / len(test)
# the same questions scored twice: a paired difference, with a 95% bootstrap interval
# over the wordings (a wording's rows are averaged first: the rows of one wording are
# not independent); every column of the table weighs each wording once
paired = {
    column: paired_difference(
        dss[column], label_only[column], seed=SEED, groups=wordings
    )
    for column in (
        "right (written answer)",
        "right (most likely choice)",
        "writes one of the four choices",
    )
}
step_name, label_name = results
comparison = pd.DataFrame(
    {
        column: {
            step_name: d["mean_before"],
            label_name: d["mean_after"],
            "difference": d["mean_diff"],
            "95% CI low": d["ci95_low"],
            "95% CI high": d["ci95_high"],
        }
        for column, d in paired.items()
    }
).T
display(comparison.round(3))
written = paired["right (written answer)"]
print(
    f"Each of the {written['n']} test wordings weighs the same above. Per question "
    f"instead, the step-by-step model writes the right answer to {dss_acc:.0%} of the "
    f"{len(test)} test questions, the label-only model to {label_acc:.0%}.\n"
    "Some of the answers the two models write (each wording once):"
)
display(
    pd.DataFrame(
        {
            "question": [r["question"] for r in test],
            "right answer": [answer_text(r) for r in test],
            "step-by-step writes": dss["written"],
            "label only writes": label_only["written"],
        }
    )
    .drop_duplicates("question")
    .head(8)
)

# %% tags=["remove-cell"]
# recorded for the book's regression checks (not shown on the page)
record("distill.accuracy", dss_acc)
record("label_only.accuracy", label_acc)

# %% [markdown]
# Both models often write something that is none of the four choices, such as the strings in the
# rows above: word pieces of the tiny tokenizer glued together, which is what a model this small
# writes for an answer it has seen only in other wordings (the model's output, not a decoding bug).
# The step-by-step model, also trained to write rationales that state facts in sentences, writes a
# valid choice and the right answer more often. Every number in the table weighs each test wording
# once: a wording's rows are averaged first, and the 95% interval is bootstrapped over the wordings.
# That is why its first row reads 0.237 against 0.129, where per question the models wrote the right
# answer to 18% and 11% of the test questions (the line under the table). For the written answer the
# interval of the difference (+0.108) lies above zero. Scored by the most likely choice (0.550 against
# 0.509), which does not ask the model to spell the answer, the interval includes zero: no difference
# we can tell. What the recovered
# rationales add here is the answer's words more than the fact behind them, which is no surprise,
# since few of them end with the right answer (3%).
#
# ## What the numbers say

# %%
teacher_eps1 = sweep[1.0]["teacher accuracy"]
summary = {
    "teacher accuracy, clean / epsilon 1": f"{acc_clean:.2f} / {teacher_eps1:.2f}",
    "words changed by InferDPT at epsilon 1": f"{sweep[1.0]['words changed']:.2f}",
    "private content words that reached the server, PDSS / in the clear": (
        f"{leaked_eps1:.2f} / {leaked_clear:.2f}"
    ),
    "deployment requests with a private question verbatim": n_verbatim,
    "decoder prompts truncated": f"{pdss_data.truncation_rate:.0%}",
    "ROUGE-L, recovered / teacher's perturbed": (
        f"{rouge_recovered:.3f} / {rouge_perturbed:.3f}; by wording, the difference "
        f"is {rouge_diff['mean_diff']:+.3f} ({rouge_diff['ci95_low']:+.3f} to "
        f"{rouge_diff['ci95_high']:+.3f})"
    ),
    "held-out accuracy (written), step-by-step / label only": (
        f"{dss_acc:.2f} / {label_acc:.2f} per question; by wording, the difference "
        f"is {written['mean_diff']:+.3f} ({written['ci95_low']:+.3f} to "
        f"{written['ci95_high']:+.3f})"
    ),
}
pd.DataFrame({"value": summary})

# %% [markdown]
# - **Privacy.** The deployment server received the public questions in the clear and, for every
#   private question, only a perturbed prompt: no request in its log holds a private question
#   verbatim, and 2% of the content words of the private questions and their choices reached it
#   (sent in the clear, all of them would). The reference rationales came from a separate server.
#   The price is paid by the teacher, whose accuracy on what it receives falls to a few percent at
#   epsilon 1.
# - **Recovery.** The decoder's rationales use a word of the private question, which the teacher
#   never saw, more often than the teacher's, but their ROUGE-L gain is within the noise (its 95%
#   interval includes zero), and a tiny SLM cannot restore facts that the noise destroyed. A larger
#   epsilon moves the trade towards utility (see the sweep), at the cost of more leaked words: 0.41
#   of them at epsilon 6.
# - **Distillation.** Training on recovered rationales and labels together wrote the right answer
#   more often than labels alone, with an interval above zero, although few of the rationales
#   were right; picking the most likely choice, the interval includes no difference.
#
# Things to try: `EPSILON = 6.0` (the teacher then answers about one perturbed question in six
# right), more `PDSS_EPOCHS`, or `ALPHA` closer to 0 to weigh the decoder more.

# %%
server.close()  # stops the local server (if this chapter started one and it still runs)
