"""A stand-in Hugging Face Hub: every Hub id and URL the book's `hub` profile names, served from local files.

It exists to rehearse the `hub` profile offline: the chapters' unchanged hub code
(`from_pretrained("bigscience/bloom-560m")`, `load_dataset("knkarthick/dialogsum")`, `transformers serve
Qwen/...`) loads these stand-ins when the environment points there (`rehearsal_env`):

- models: a Hugging Face cache folder (`models--org--name/snapshots/<rev>/` and `refs/main`), read with
  `HF_HUB_OFFLINE=1`. The weights are the tiny world's, so the numbers mean something, saved under the real
  architecture with what the chapters' code depends on: the checkpoint dtype (bloom-560m fp16, Qwen2.5
  bf16), the special tokens and padding side, Qwen2.5's generation config (stop list, sampling defaults)
  and chat template, the classifier's `id2label`, and GPT-2's real tokenizer when `hub-samples` has it;
- data sets: folders named like the repo id (`knkarthick/dialogsum/`), which `datasets` resolves before the
  Hub, in the Hub's layout (columns, splits, configs); the real rows from `hub-samples`
  (`../shared/hub-samples`) when given, else generated rows of the same layout and quirks;
- the instruction JSON that chapter 01 downloads: a file to put where the chapter saves its download.

What a rehearsal cannot show: real weights, real tokenizer merges (but GPT-2's), GPU memory and time.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import transformers
from tokenizers import Tokenizer
from transformers import AutoConfig, AutoTokenizer, GPT2TokenizerFast, PreTrainedTokenizerFast

from llmtut.world import bases, cache, detox_models, pdss_models, tasks

# ---------------------------------------------------------------------------------------------
# Facts about the Hub models (from their config.json, generation_config.json, tokenizer_config.json)
# ---------------------------------------------------------------------------------------------

# Qwen2.5-*-Instruct's chat template (tokenizer_config.json), verbatim.
QWEN25_CHAT_TEMPLATE = """{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\\n<tool_call>\\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {{- message.content }}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""

# The tiny Qwen2 tokenizers' special tokens, renamed to Qwen2.5's: the ids stay, so the tiny models stop
# where they learned to (their `</s>` becomes Qwen's end token).
QWEN_INSTRUCT_NAMES = {"</s>": "<|im_end|>", "<pad>": "<|endoftext|>", "<s>": "<|im_start|>"}
QWEN_BASE_NAMES = {"</s>": "<|endoftext|>", "<pad>": "<|im_end|>", "<s>": "<|im_start|>"}


@dataclass(frozen=True)
class ModelStandin:
    """A Hub model played by a tiny-world build, with the Hub checkpoint's properties."""

    tiny: Callable[[], Path]
    dtype: str = "float32"  # the checkpoint's dtype on the Hub (transformers 5 loads it as such)
    qwen: str | None = None  # "instruct" or "base": rename special tokens, generation config, chat template
    repetition_penalty: float = 1.1  # Qwen2.5-Instruct's generation_config (1.05 for the 7B)
    gpt2_tokenizer: bool = False  # use GPT-2's real tokenizer files when hub-samples has them


MODELS: dict[str, ModelStandin] = {
    "bigscience/bloom-560m": ModelStandin(bases.causal_base, dtype="float16"),
    "openai-community/gpt2-medium": ModelStandin(bases.gpt2_base, gpt2_tokenizer=True),
    "google/flan-t5-base": ModelStandin(detox_models.summarizer),
    "facebook/roberta-hate-speech-dynabench-r4-target": ModelStandin(detox_models.toxicity_classifier),
    "Qwen/Qwen2.5-0.5B-Instruct": ModelStandin(detox_models.causal_summarizer, "bfloat16", "instruct"),
    "Qwen/Qwen2.5-0.5B": ModelStandin(pdss_models.student, "bfloat16", "base"),
    "Qwen/Qwen2.5-1.5B-Instruct": ModelStandin(pdss_models.teacher, "bfloat16", "instruct"),
    # chapter 01's judge (played by the tiny teacher: any chat model behind Qwen's chat template)
    "Qwen/Qwen2.5-3B-Instruct": ModelStandin(pdss_models.teacher, "bfloat16", "instruct", repetition_penalty=1.05),
}

DIALOGSUM = "knkarthick/dialogsum"
ARC = "allenai/ai2_arc"
INSTRUCTION_FILE = "instruction-data.json"
# hub-samples' files (see its README), by what they stand for
SAMPLE_FILES = {
    "dialogsum": [f"knkarthick--dialogsum/{s}.jsonl" for s in ("train", "validation", "test")],
    "arc": ["allenai--ai2_arc/ARC-Easy/train.jsonl"],
    "instructions": [f"rasbt--instruction-data/{INSTRUCTION_FILE}"],
    "gpt2": ["openai-community--gpt2/vocab.json", "openai-community--gpt2/merges.txt"],
}


def default_samples() -> Path:
    """`$LLMTUT_HUB_SAMPLES`, else `../shared/hub-samples` beside the checkout (CI has it; a fresh clone not)."""
    return Path(os.environ.get("LLMTUT_HUB_SAMPLES") or cache.PACKAGE_DIR.parent.parent / "shared" / "hub-samples")


def usable_samples(samples: Path | None) -> Path | None:
    """`samples` if it holds every file the stand-ins read, else None (generated rows are used)."""
    if samples is None:
        return None
    files = [Path(samples) / f for fs in SAMPLE_FILES.values() for f in fs]
    return Path(samples) if all(f.is_file() for f in files) else None


def _samples_digest(samples: Path | None) -> str | None:
    if samples is None:
        return None
    h = hashlib.sha256()
    for f in sorted(f for fs in SAMPLE_FILES.values() for f in fs):
        h.update(f.encode() + (samples / f).read_bytes())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------


def _renamed(tokenizer: PreTrainedTokenizerFast, names: dict[str, str]) -> Tokenizer:
    """`tokenizer`'s backend with its special tokens renamed (same ids)."""
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    for added in spec["added_tokens"]:
        added["content"] = names.get(added["content"], added["content"])
    spec["model"]["vocab"] = {names.get(t, t): i for t, i in spec["model"]["vocab"].items()}
    return Tokenizer.from_str(json.dumps(spec))


def _qwen_tokenizer(tiny: PreTrainedTokenizerFast, kind: str) -> PreTrainedTokenizerFast:
    """A tiny Qwen2 tokenizer with Qwen2.5's special tokens: instruct ends turns with <|im_end|> and pads
    with <|endoftext|>; base ends and pads with <|endoftext|>. Qwen2.5 pads on the right (the default)."""
    names = QWEN_INSTRUCT_NAMES if kind == "instruct" else QWEN_BASE_NAMES
    eos = "<|im_end|>" if kind == "instruct" else "<|endoftext|>"
    tok = PreTrainedTokenizerFast(
        tokenizer_object=_renamed(tiny, names), eos_token=eos, pad_token="<|endoftext|>", unk_token=None,
        bos_token=None, clean_up_tokenization_spaces=False, padding_side="right",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"] if kind == "instruct" else [],
    )
    tok.chat_template = QWEN25_CHAT_TEMPLATE
    return tok


def _qwen_generation_config(model, tok: PreTrainedTokenizerFast, kind: str, repetition_penalty: float) -> None:
    end, im_end = tok.convert_tokens_to_ids("<|endoftext|>"), tok.convert_tokens_to_ids("<|im_end|>")
    model.config.bos_token_id, model.config.pad_token_id = end, end
    model.config.eos_token_id = im_end if kind == "instruct" else end
    g = model.generation_config
    g.bos_token_id, g.pad_token_id = end, end
    if kind == "instruct":  # Qwen2.5-*-Instruct's generation_config.json
        g.eos_token_id = [im_end, end]
        g.do_sample, g.temperature, g.top_p, g.top_k = True, 0.7, 0.8, 20
        g.repetition_penalty, g.max_new_tokens = repetition_penalty, None  # no length: transformers' default
    else:  # Qwen2.5-0.5B's
        g.eos_token_id, g.do_sample, g.max_new_tokens = end, False, 2048


def _gpt2_with_real_tokenizer(model, tiny: PreTrainedTokenizerFast, samples: Path) -> GPT2TokenizerFast:
    """GPT-2's real tokenizer, and `model`'s embeddings re-indexed to it: each real token's row is the mean
    of the rows of the tiny tokens that spell it (the same byte-level alphabet), so the model keeps what
    it knew of the words the two vocabularies share."""
    real = GPT2TokenizerFast.from_pretrained(str(samples / Path(SAMPLE_FILES["gpt2"][0]).parent), model_max_length=1024)
    old = model.get_input_embeddings().weight.detach().clone()
    vocab = real.get_vocab()
    rows = torch.empty(len(vocab), old.shape[1])
    tiny_model = tiny.backend_tokenizer.model
    for token, i in vocab.items():
        if token == real.eos_token:
            ids = [tiny.eos_token_id]
        else:
            ids = [t.id for t in tiny_model.tokenize(token)] or [tiny.unk_token_id or tiny.eos_token_id]
        rows[i] = old[ids].mean(0)
    model.resize_token_embeddings(len(vocab), mean_resizing=False)
    model.get_input_embeddings().weight.data.copy_(rows)
    model.tie_weights()
    model.config.bos_token_id = model.config.eos_token_id = real.eos_token_id
    model.generation_config.bos_token_id = model.generation_config.eos_token_id = real.eos_token_id
    model.generation_config.pad_token_id = None
    return real


def save_model_standin(repo_id: str, standin: ModelStandin, hub_cache: Path, samples: Path | None, rev: str) -> Path:
    """Write `standin` under `repo_id` in the Hugging Face cache layout; return its snapshot folder."""
    tiny_path = standin.tiny()
    config = AutoConfig.from_pretrained(tiny_path)
    model = getattr(transformers, config.architectures[0]).from_pretrained(tiny_path, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(tiny_path)
    if standin.qwen:
        tokenizer = _qwen_tokenizer(tokenizer, standin.qwen)
        _qwen_generation_config(model, tokenizer, standin.qwen, standin.repetition_penalty)
    if standin.gpt2_tokenizer and samples is not None:
        tokenizer = _gpt2_with_real_tokenizer(model, tokenizer, samples)
    model = model.to(getattr(torch, standin.dtype))
    repo = hub_cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / rev
    model.save_pretrained(snapshot)
    tokenizer.save_pretrained(snapshot)
    (snapshot / "STANDIN.json").write_text(json.dumps({"repo_id": repo_id, "tiny": tiny_path.name}, indent=2))
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(rev)
    return snapshot


# ---------------------------------------------------------------------------------------------
# Data sets, in the Hub's layout
# ---------------------------------------------------------------------------------------------


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def generated_dialogsum() -> dict[str, list[dict]]:
    """DialogSum's layout from the tiny world's dialogues: `id, dialogue, summary, topic`; the test split
    holds each dialogue three times, ids `test_N_1..3` (the tiny world has one summary per dialogue: the
    three references are the same text)."""
    splits = detox_models.dialogue_splits()
    train = [{"id": f"train_{i}", "dialogue": d.dialogue, "summary": d.summary, "topic": d.topic}
             for i, d in enumerate(splits["train"])]
    test = [{"id": f"test_{i}_{k}", "dialogue": d.dialogue, "summary": d.summary, "topic": d.topic}
            for i, d in enumerate(splits["test"]) for k in (1, 2, 3)]
    return {"train": train[100:], "validation": [dict(r, id=f"dev_{i}") for i, r in enumerate(train[:100])],
            "test": test}


def generated_arc(seed: int = 0) -> list[dict]:
    """ARC-Easy's layout from the tiny world's questions: `id, question, choices{text,label}, answerKey`,
    with its quirks: some rows labelled 1-4 instead of A-D, and some question texts repeated."""
    rng = random.Random(seed)
    rows = [{k: q[k] for k in ("id", "question", "choices", "answerKey")} for q in pdss_models.questions()]
    for r in rng.sample(rows, len(rows) // 20):  # ~5% numeric labels, as ARC's "1"-"4"
        labels = [str(i + 1) for i in range(len(r["choices"]["label"]))]
        r["answerKey"] = labels[r["choices"]["label"].index(r["answerKey"])]
        r["choices"] = {"text": r["choices"]["text"], "label": labels}
    rows += [dict(r, id=r["id"] + "_again") for r in rng.sample(rows, 10)]  # repeated question texts
    rng.shuffle(rows)
    return rows


ARC_README = """---
configs:
- config_name: ARC-Easy
  data_files:
  - split: train
    path: ARC-Easy/train.jsonl
---
# allenai/ai2_arc (stand-in)
"""


def write_datasets(root: Path, samples: Path | None) -> None:
    """The data sets under `root/<org>/<name>/` and the instruction JSON at `root/instruction-data.json`."""
    dialogsum = root / DIALOGSUM
    arc = root / ARC
    if samples is not None:
        dialogsum.mkdir(parents=True)
        for f in SAMPLE_FILES["dialogsum"]:
            shutil.copy(samples / f, dialogsum / Path(f).name)
        (arc / "ARC-Easy").mkdir(parents=True)
        shutil.copy(samples / SAMPLE_FILES["arc"][0], arc / "ARC-Easy" / "train.jsonl")
        shutil.copy(samples / SAMPLE_FILES["instructions"][0], root / INSTRUCTION_FILE)
    else:
        for split, rows in generated_dialogsum().items():
            _write_jsonl(dialogsum / f"{split}.jsonl", rows)
        _write_jsonl(arc / "ARC-Easy" / "train.jsonl", generated_arc())
        records = tasks.tiny_instruction_records(1100, 0)
        (root / INSTRUCTION_FILE).write_text(json.dumps(records, indent=1, ensure_ascii=False), encoding="utf-8")
    (arc / "README.md").write_text(ARC_README)


# ---------------------------------------------------------------------------------------------
# The whole stand-in Hub
# ---------------------------------------------------------------------------------------------


def build(out: Path, samples: Path | None) -> None:
    rev = hashlib.sha1(out.name.encode()).hexdigest()  # a 40-hex "commit", as the Hub's
    for repo_id, standin in MODELS.items():
        save_model_standin(repo_id, standin, out / "hub", samples, rev)
    write_datasets(out / "datasets", samples)


def standin_hub(samples: Path | None = None) -> Path:
    """The stand-in Hub's folder (built once, then cached): `hub/` is a Hugging Face cache, `datasets/`
    holds the data set folders and the instruction JSON. `samples` is `hub-samples` (real rows) or None."""
    samples = usable_samples(samples)
    models = {repo_id: {"tiny": m.tiny().name, "dtype": m.dtype, "qwen": m.qwen, "gpt2": m.gpt2_tokenizer,
                        "repetition_penalty": m.repetition_penalty} for repo_id, m in MODELS.items()}
    recipe = {"models": models, "samples": _samples_digest(samples)}
    return cache.cached_build("standin-hub", recipe, lambda out: build(out, samples), __name__)


def rehearsal_env(root: Path, work: Path) -> dict[str, str]:
    """Environment variables that point the Hugging Face libraries at the stand-in Hub `root`, offline, for a
    run in the folder `work`. `datasets` gets its own cache there: it keys a local folder's data by the
    folder's name, so a shared cache would serve rows of an earlier stand-in."""
    return {"HF_HUB_CACHE": str(root / "hub"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_CACHE": str(work / ".hf-datasets-cache")}
