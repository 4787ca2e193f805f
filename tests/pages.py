"""What a reader must not find on a chapter's page: bookkeeping, maintainers' words, unreadable code.

Used twice: on the chapters' sources (`test_book.py`: code width, source dumps, prose) and on each
executed chapter (`test_notebooks.py`: what its cells printed).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import nbformat

from llmtut.page import MAX_COLUMNS as MAX_CODE_COLUMNS  # one page width for code, shown or run

# words for maintainers, not readers (the setup page may use them)
# "CI" alone is also a confidence interval ("95% CI low"): only the maintainers' uses count
MAINTAINER_WORDS = re.compile(r"\b(?:[Tt]est suite|[Tt]he tests\b|[Oo]ur tests\b|make (?:test|bench|unit|baseline)\b"
                              r"|(?:[Tt]he|[Oo]ur|[Ii]n|[Oo]n|book's) CI\b|CI (?:runs?|jobs?|machines?)\b)")
LOCAL_PATH = re.compile(r"(?<![\w.])(/tmp/|/root/|/home/|/work/|/Users/|[A-Z]:\\Users\\)")


HIDDEN = "remove-cell"  # the tag of a cell the book's page leaves out (the record cells)


def code_problems(source: str, tags: Iterable[str] = ()) -> list[str]:
    """What a code cell would show badly: lines too wide, a printed source dump, bookkeeping.

    Recording the numbers the chapter's checks read is bookkeeping: it belongs in a cell
    tagged `remove-cell`, which the page leaves out (metric keys never reach the reader).
    """
    problems = [f"{len(line)} columns: {line[:60]}..." for line in source.splitlines()
                if len(line) > MAX_CODE_COLUMNS]
    if "inspect.getsource" in source:
        problems.append("prints inspect.getsource(...): show it with llmtut.page.show_source")
    if HIDDEN not in tags and re.search(r"\brecord\(", source):
        problems.append(f"calls record(...) in a cell the page shows: move it to a cell tagged {HIDDEN}")
    return problems


def text_problems(text: str, metric_keys: Iterable[str] = ()) -> list[str]:
    """Maintainers' words, local paths and metric keys in text a reader sees (prose or output)."""
    problems = [f"maintainers' word {m.group(0)!r}" for m in MAINTAINER_WORDS.finditer(text)]
    problems += [f"local path {text[m.start():m.start() + 40]!r}" for m in LOCAL_PATH.finditer(text)]
    problems += [f"metric key {key!r}" for key in metric_keys if "." in key and key in text]
    return problems


def output_text(cell: nbformat.NotebookNode) -> str:
    """Everything a code cell's outputs show as text."""
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream" and out.get("name") == "stdout":
            parts.append(out.get("text", ""))
        for mime in ("text/plain", "text/markdown", "text/html"):
            parts.append("".join(out.get("data", {}).get(mime, "")))
    return "\n".join(parts)


def page_problems(notebook: Path, metric_keys: Iterable[str] = ()) -> list[str]:
    """The problems of an executed chapter's page: in its prose and in what its cells printed."""
    nb = nbformat.read(notebook, as_version=4)
    keys = list(metric_keys)
    problems = []
    for i, cell in enumerate(nb.cells):
        text = cell.source if cell.cell_type == "markdown" else output_text(cell)
        problems += [f"cell {i}: {p}" for p in text_problems(text, keys)]
    return problems
