import pytest

from llmtut.page import MAX_COLUMNS, show_source, source_excerpt


def sample(a: int, b: int) -> int:
    """Add two numbers.

    A second paragraph.
    """
    total = a + b
    doubled = 2 * total
    return doubled


def one_line_doc(x: int) -> int:
    """Return x."""
    return x


def too_wide() -> str:
    return "a string far too long for a page...................................................."


def test_the_whole_source_with_its_docstring():
    text = source_excerpt(sample)
    assert text.startswith("def sample(a: int, b: int) -> int:\n") and '"""Add two numbers.' in text
    assert text.endswith("    return doubled") and "# ..." not in text


def test_without_the_docstring():
    assert source_excerpt(sample, docstring=False).splitlines() == [
        "def sample(a: int, b: int) -> int:", "    total = a + b", "    doubled = 2 * total", "    return doubled"]
    assert source_excerpt(one_line_doc, docstring=False).splitlines() == ["def one_line_doc(x: int) -> int:",
                                                                          "    return x"]


def test_an_excerpt_marks_what_it_leaves_out():
    assert source_excerpt(sample, start="total =", stop="doubled =").splitlines() == [
        "# ...", "total = a + b", "doubled = 2 * total", "# ..."]
    assert source_excerpt(sample, stop="total =", docstring=False).splitlines() == [
        "def sample(a: int, b: int) -> int:", "    total = a + b", "    # ..."]


def nested(xs: list[int]) -> int:
    total = 0
    for x in xs:
        total += x
        total *= 2
    return total


def test_an_excerpt_from_inside_a_body_starts_at_the_margin():
    assert source_excerpt(nested, start="total += x", stop="total *= 2").splitlines() == [
        "# ...", "total += x", "total *= 2", "# ..."]
    assert source_excerpt(nested, start="for x", stop="return").splitlines() == [
        "# ...", "for x in xs:", "    total += x", "    total *= 2", "return total"]


def test_a_missing_marker_or_a_wide_line_is_an_error():
    with pytest.raises(ValueError, match="contains 'nowhere'"):
        source_excerpt(sample, start="nowhere")
    with pytest.raises(ValueError, match=f"wider than {MAX_COLUMNS} columns"):
        source_excerpt(too_wide)


def test_show_source_is_a_python_code_block():
    block = show_source(sample, start="return")
    assert block.data.startswith("```python\n# ...\nreturn doubled") and block.data.endswith("\n```")
