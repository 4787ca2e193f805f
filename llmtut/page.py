"""What a chapter shows on its page besides its own cells: excerpts of `llmtut`'s source.

A chapter that teaches a function of the package shows it as a highlighted code block (a Markdown
output: the book renders it like its own code cells, Jupyter and Colab as a code block), trimmed to
the lines that matter, never as a printed string.
"""

from __future__ import annotations

import inspect
import textwrap
from typing import Any

from IPython.display import Markdown

MAX_COLUMNS = 88  # what a book page shows without a scroll bar


def source_excerpt(obj: Any, start: str | None = None, stop: str | None = None, docstring: bool = True) -> str:
    """The source of `obj`, dedented; from the first line containing `start` to the first line from there
    containing `stop` (both kept) when they are given, with `# ...` where lines are left out; without its
    docstring when `docstring` is False. An excerpt from inside a body is dedented to the left margin.

    Raises ValueError when `start` or `stop` is not found, or a kept line is wider than MAX_COLUMNS.
    """
    lines = textwrap.dedent(inspect.getsource(obj)).rstrip("\n").splitlines()
    if not docstring:
        lines = _without_docstring(lines)
    first, last = 0, len(lines) - 1
    if start is not None:
        first = _find(lines, start, 0, obj)
    if stop is not None:
        last = _find(lines, stop, first, obj)
    kept = lines[first : last + 1]
    # an excerpt from inside a body starts at the left margin: no page width lost to indentation
    margin = min(len(line) - len(line.lstrip()) for line in kept if line.strip())
    kept = [line[margin:] for line in kept]
    indent = len(kept[0]) - len(kept[0].lstrip())
    body = " " * max(0, 4 - margin)  # where the lines left out at the end stood
    excerpt = ([" " * indent + "# ..."] if first > 0 else []) + kept + ([body + "# ..."] if last < len(lines) - 1 else [])
    wide = [line for line in excerpt if len(line) > MAX_COLUMNS]
    if wide:
        raise ValueError(f"{obj.__qualname__} has {len(wide)} lines wider than {MAX_COLUMNS} columns, e.g. "
                         f"{wide[0]!r}: wrap them in the source, or show fewer lines.")
    return "\n".join(excerpt)


def show_source(obj: Any, start: str | None = None, stop: str | None = None, docstring: bool = True) -> Markdown:
    """`source_excerpt` as a highlighted Python block: the last expression of a cell, or `display`ed."""
    return Markdown(f"```python\n{source_excerpt(obj, start, stop, docstring)}\n```")


def _find(lines: list[str], text: str, begin: int, obj: Any) -> int:
    for i in range(begin, len(lines)):
        if text in lines[i]:
            return i
    raise ValueError(f"no line of {obj.__qualname__} from line {begin + 1} on contains {text!r}.")


def _without_docstring(lines: list[str]) -> list[str]:
    """`lines` of a def or class without the docstring that follows its signature."""
    body = next((i for i, line in enumerate(lines) if line.rstrip().endswith(":")
                 and not line.lstrip().startswith(("#", "@"))), None)
    if body is None or body + 1 >= len(lines):
        return lines
    opening = lines[body + 1].strip()
    quote = opening[:3]
    if quote not in ('"""', "'''"):
        return lines
    end = body + 1
    if not (opening.count(quote) >= 2 and len(opening) > 3):
        end = next(i for i in range(body + 2, len(lines)) if quote in lines[i])
    return lines[: body + 1] + lines[end + 1 :]
