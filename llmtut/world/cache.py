"""The world's cache: built artifacts in folders keyed by a hash of their recipe and of their code.

The code part of a key is the whole source of every `llmtut` module the builder's module imports,
directly or through other `llmtut` modules, found by reading their import statements: nothing is
listed by hand, so a helper cannot be forgotten. The world imports nothing of the lessons but the
shared formats and training defaults (`tests/world/test_imports.py` holds it to that), so an edit to
a lesson module never changes a world model's key.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from functools import cache
from pathlib import Path

DONE = "BUILD_COMPLETE"


def cache_root() -> Path:
    """`$LLMTUT_CACHE`, else `~/.cache/llmtut`."""
    return Path(os.environ.get("LLMTUT_CACHE") or Path.home() / ".cache" / "llmtut")


PACKAGE_DIR = Path(__file__).resolve().parents[1]  # llmtut/


def _source_path(module: str) -> Path | None:
    """The source file of an `llmtut` module (`llmtut.a.b` -> llmtut/a/b.py or llmtut/a/b/__init__.py),
    found on disk without importing anything; None for a name that is not a module (a function, say)."""
    parts = module.split(".")
    if parts[0] != PACKAGE_DIR.name:
        return None
    base = PACKAGE_DIR.joinpath(*parts[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imported_modules(path: Path) -> set[str]:
    """The `llmtut` modules that the source file at `path` imports (`import x`, `from x import y`,
    `from x import module`), at any depth of the file, absolute imports only."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from llmtut.world import bpe` takes the module llmtut.world.bpe; `from llmtut.formats import
            # chat_turn` takes a name defined in llmtut.formats
            submodules = [f"{node.module}.{alias.name}" for alias in node.names]
            names = [m for m in submodules if _source_path(m)]
            if len(names) < len(submodules):
                names.append(node.module)
        else:
            continue
        found |= {name for name in names if _source_path(name)}
    return found


@cache
def module_closure(module: str) -> tuple[str, ...]:
    """`module` and every `llmtut` module it imports, directly or not, sorted by name."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = _source_path(name)
        if path is None:
            raise ValueError(f"{name!r} is not a Python module of this package with a source file.")
        todo += sorted(imported_modules(path) - seen)
    return tuple(sorted(seen))


def code_hash(module: str) -> str:
    """A hash of the source of `module` and of every `llmtut` module it imports, directly or not."""
    h = hashlib.sha256()
    for name in module_closure(module):
        h.update(name.encode() + b"\0" + _source_path(name).read_bytes() + b"\0")
    return h.hexdigest()


def recipe_hash(recipe: dict, module: str) -> str:
    """Hash of the recipe and of the code that builds it (`code_hash(module)`): change either, get a new key."""
    h = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode())
    h.update(code_hash(module).encode())
    return h.hexdigest()[:12]


def cached_build(name: str, recipe: dict, build: Callable[[Path], None], module: str) -> Path:
    """Return `<cache>/<name>-<hash>`, calling `build(tmp_dir)` first if it is not there yet.

    `module` is the module that defines the builder (pass `__name__`): its code and the code it imports
    are part of the key. The build writes into a temporary folder that is renamed into place only when
    complete, so an interrupted build never leaves a half-written artifact behind.
    """
    path = cache_root() / f"{name}-{recipe_hash(recipe, module)}"
    if (path / DONE).exists():
        return path
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    build(tmp)
    (tmp / "recipe.json").write_text(json.dumps(recipe, indent=2, sort_keys=True))
    (tmp / DONE).touch()
    shutil.rmtree(path, ignore_errors=True)  # a stale, incomplete one
    os.replace(tmp, path)
    return path


def cached_part(
    name: str, recipe: dict, part: str, build: Callable[[Path, dict, bool], None], progress: bool, module: str
) -> Path:
    """`cached_build` of an artifact that shares its recipe's "data" and "tokenizer" with its siblings and
    has its own `part` (e.g. "summarizer"): only those three parts are in its key, so changing one model's
    settings rebuilds that model alone. `build(out, recipe, progress)` builds it."""
    own = {k: recipe[k] for k in ("data", "tokenizer", part)}
    return cached_build(name, own, lambda out: build(out, recipe, progress), module)


def world_card(path: str | Path) -> dict:
    """The numbers recorded when an artifact was built (size, losses, accuracy, build time)."""
    return json.loads((Path(path) / "world_card.json").read_text())
