"""A directory cache for built artifacts, keyed by a hash of the recipe that builds them."""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from types import FunctionType, ModuleType

DONE = "BUILD_COMPLETE"


def cache_root() -> Path:
    """`$LLMTUT_CACHE`, else `~/.cache/llmtut`."""
    return Path(os.environ.get("LLMTUT_CACHE") or Path.home() / ".cache" / "llmtut")


def recipe_hash(recipe: dict, code: Iterable[ModuleType | FunctionType | str] = ()) -> str:
    """Hash of the recipe and of the source of the modules, functions or constants that build it: change either, get a new key."""
    h = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode())
    for item in code:
        h.update((item if isinstance(item, str) else inspect.getsource(item)).encode())
    return h.hexdigest()[:12]


def cached_build(
    name: str, recipe: dict, build: Callable[[Path], None], code: Iterable[ModuleType | FunctionType | str] = ()
) -> Path:
    """Return `<cache>/<name>-<hash>`, calling `build(tmp_dir)` first if it is not there yet.

    The build writes into a temporary folder that is renamed into place only when complete, so an
    interrupted build never leaves a half-written artifact behind.
    """
    path = cache_root() / f"{name}-{recipe_hash(recipe, code)}"
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
