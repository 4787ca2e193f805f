"""The book's structure: paired notebooks without outputs, the Colab cell, the table of contents."""

import re
from pathlib import Path

import jupytext
import nbformat
import pages
import pytest
import yaml

from llmtut.colab import INSTALL_CELL, REPO_URL

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def test_there_are_chapters():
    assert CHAPTERS, "no notebooks/NN_topic.py found"


@pytest.mark.parametrize("py", CHAPTERS, ids=lambda p: p.stem)
def test_paired_ipynb_is_in_sync_and_has_no_outputs(py):
    ipynb = py.with_suffix(".ipynb")
    assert ipynb.exists(), f"{ipynb.name} missing: run `make sync`"
    nb = nbformat.read(ipynb, as_version=4)
    source = jupytext.read(py)
    assert [(c.cell_type, c.source) for c in nb.cells] == [(c.cell_type, c.source) for c in source.cells], (
        f"{ipynb.name} is out of sync with {py.name}: run `make sync`"
    )
    assert all(not c.outputs and c.execution_count is None for c in code_cells(nb)), f"{ipynb.name} has outputs"


@pytest.mark.parametrize("py", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_layout(py):
    nb = jupytext.read(py)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), "title first"
    cells = code_cells(nb)
    assert cells[0].source == INSTALL_CELL, f"the first code cell must be llmtut.colab.INSTALL_CELL:\n{INSTALL_CELL}"
    params = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged `parameters`"
    for name in ("PROFILE", "SEED", "DEVICE"):
        assert f"\n{name} = " in "\n" + params[0].source, f"parameters cell lacks {name}"
    # in Colab only the package is installed: no chapter may read a repository file
    assert "../" not in py.read_text()


def test_every_chapter_is_in_the_table_of_contents():
    toc = (ROOT / "_toc.yml").read_text()
    for py in CHAPTERS:
        assert f"notebooks/{py.stem}" in toc


def test_repository_url_matches_the_one_in_the_package():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["repository"]["url"] == REPO_URL
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"


def test_the_book_skips_every_venv_the_makefile_makes():
    """jupyter-book reads every page-like file under the root: a venv's package READMEs break the build."""
    venvs = re.findall(r"^\w*VENV \?= (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert ".venv" in venvs and ".venv-colab" in venvs
    excluded = yaml.safe_load((ROOT / "_config.yml").read_text())["exclude_patterns"]
    assert [v for v in venvs if f"{v}/**" not in excluded] == []


@pytest.mark.parametrize("py", CHAPTERS, ids=lambda p: p.stem)
def test_code_cells_fit_a_page_and_show_no_source_dumps(py):
    """Code a reader sees is at most 88 columns wide; the package's code is shown highlighted
    (llmtut.page.show_source), never as a printed string."""
    problems = [f"cell {i}: {p}" for i, cell in enumerate(jupytext.read(py).cells) if cell.cell_type == "code"
                for p in pages.code_problems(cell.source, cell.metadata.get("tags", []))]
    assert not problems, f"{py.name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("py", CHAPTERS, ids=lambda p: p.stem)
def test_prose_has_no_maintainers_words_paths_or_metric_keys(py):
    """The chapter's prose speaks to a learner: no "test suite", "CI", local paths or metric keys
    (the keys a chapter records, found in its source's record() calls)."""
    source = py.read_text()
    keys = set(re.findall(r'record\(\s*f?"([\w.{}]+)"', source))
    keys = {k for k in keys if "{" not in k}
    prose = "\n".join(c.source for c in jupytext.read(py).cells if c.cell_type == "markdown")
    problems = pages.text_problems(prose, keys)
    assert not problems, f"{py.name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("py", CHAPTERS, ids=lambda p: p.stem)
def test_every_chapter_closes_the_same_way(py):
    """The last section of every chapter is "What the numbers say", with a table of its numbers."""
    cells = jupytext.read(py).cells
    headings = [(i, line) for i, c in enumerate(cells) if c.cell_type == "markdown"
                for line in c.source.splitlines() if line.startswith("## ")]
    assert headings and headings[-1][1] == "## What the numbers say", f"{py.name} ends with {headings[-1:]}"
    after = [c for c in cells[headings[-1][0]:] if c.cell_type == "code"]
    assert any("DataFrame" in c.source or "display(" in c.source for c in after), "no summary table after it"


@pytest.mark.parametrize("py", CHAPTERS, ids=lambda p: p.stem)
def test_section_links_point_at_a_heading_of_the_chapter(py):
    """A "[section 4](#4-...)" link lands on a heading: its anchor is MyST's slug of one of the
    chapter's headings (myst_heading_anchors in _config.yml)."""
    from myst_parser.mdit_to_docutils.base import default_slugify

    prose = "\n".join(c.source for c in jupytext.read(py).cells if c.cell_type == "markdown")
    headings = re.findall(r"^#{1,3} (.+)$", prose, flags=re.M)
    slugs = {default_slugify(re.sub(r"[`*]", "", h)) for h in headings}
    broken = [a for a in re.findall(r"\]\(#([^)]+)\)", prose) if a not in slugs]
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["sphinx"]["config"].get("myst_heading_anchors", 0) >= 3, "no heading anchors"
    assert not broken, f"{py.name}: links to no heading: {broken}"
    plain = re.findall(r"(?<!\[)\b[Ss]ection \d+\b(?!\]\()", prose)
    assert not plain, f"{py.name}: a section named in plain text is a link: {plain}"


def test_page_checks_catch_what_a_reader_must_not_see():
    """The page checks used above find each kind of problem (and pass clean prose)."""
    assert pages.text_problems("The mean rose (95% CI 0.1 to 0.3), see chapter 2.") == []
    for text in ("the test suite checks it", "run make bench first", "in our CI it passes",
                 "teacher at /tmp/x/qwen2"):
        assert pages.text_problems(text), text
    assert pages.text_problems("speed-up = padding_free.speedup", ["padding_free.speedup"])
    assert pages.code_problems("x = 1\n" + "y = '" + "a" * 90 + "'")
    assert pages.code_problems("print(inspect.getsource(f))")
    assert pages.code_problems("x = 2\nrecord('a.b', x)")
    assert pages.code_problems("x = record('a.b', 2)")
    assert pages.code_problems("record('a.b', 2)", tags=[pages.HIDDEN]) == []
