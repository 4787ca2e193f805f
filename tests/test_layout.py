"""The package's layout: no import cycle, the lessons never import the tiny world, the world imports only
the shared formats and defaults, and the chapters reach the world through `llmtut.profiles` alone."""

import ast
from pathlib import Path

import pytest

from llmtut.world.cache import PACKAGE_DIR, imported_modules

ROOT = PACKAGE_DIR.parent
WORLD = "llmtut.world"
# The lesson modules' one door to the world: it maps model and data roles to world builds.
PROFILES = "llmtut.profiles"
# Of the rest of llmtut, the world imports these only (their source is part of every world cache key).
SHARED = {"llmtut.formats", "llmtut.trainer_defaults"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Every llmtut module -> the llmtut modules it imports (at any depth of the file)."""
    return {module_name(p): imported_modules(p) for p in sorted(PACKAGE_DIR.rglob("*.py"))}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    state: dict[str, str] = {}  # "open" while on the DFS path, then "done"
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def is_world(module: str) -> bool:
    return module == WORLD or module.startswith(WORLD + ".")


def test_the_graph_sees_the_package():
    graph = import_graph()
    assert {"llmtut.profiles", "llmtut.formats", "llmtut.world.bases", "llmtut.world.cache"} <= set(graph)
    assert "llmtut.world.bases" in graph["llmtut.profiles"]
    assert "llmtut.formats" in graph["llmtut.world.bases"]


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_lesson_modules_never_import_the_world():
    offenders = {m: sorted(filter(is_world, deps)) for m, deps in import_graph().items()
                 if not is_world(m) and m != PROFILES and any(map(is_world, deps))}
    assert offenders == {}, f"lesson modules importing {WORLD} (ask {PROFILES} instead): {offenders}"


def test_the_world_imports_only_the_shared_modules():
    outside = {m: sorted(d for d in deps if not is_world(d) and d not in SHARED)
               for m, deps in import_graph().items() if is_world(m)}
    assert {m: d for m, d in outside.items() if d} == {}, (
        f"world modules importing lesson modules: an edit to those would not change the world's cache keys. "
        f"Allowed from outside the world: {sorted(SHARED)}")


@pytest.mark.parametrize("chapter", sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py")), ids=lambda p: p.stem)
def test_chapters_reach_the_world_only_through_profiles(chapter):
    modules = set()
    for node in ast.walk(ast.parse(chapter.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    assert not any(map(is_world, modules)), f"{chapter.name} imports {WORLD}; use {PROFILES}"
