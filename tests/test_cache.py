import json

import pytest

from llmtut import cache


def test_build_runs_once_and_is_reused(tmp_cache):
    calls = []

    def build(out):
        calls.append(out)
        (out / "artifact.txt").write_text("built")

    first = cache.cached_build("thing", {"a": 1}, build)
    second = cache.cached_build("thing", {"a": 1}, build)
    assert first == second and len(calls) == 1
    assert (first / "artifact.txt").read_text() == "built"
    assert json.loads((first / "recipe.json").read_text()) == {"a": 1}
    assert first.parent == tmp_cache


def test_recipe_or_code_change_gives_a_new_key():
    import llmtut.world as world_module

    assert cache.recipe_hash({"a": 1}) != cache.recipe_hash({"a": 2})
    assert cache.recipe_hash({"a": 1}) != cache.recipe_hash({"a": 1}, code=[world_module])
    assert cache.recipe_hash({"a": 1, "b": 2}) == cache.recipe_hash({"b": 2, "a": 1})


def test_interrupted_build_leaves_no_artifact(tmp_cache):
    def failing(out):
        (out / "half.txt").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.cached_build("thing", {"a": 1}, failing)
    assert not any(p.name.startswith("thing-") for p in tmp_cache.iterdir())
    rebuilt = cache.cached_build("thing", {"a": 1}, lambda out: (out / "ok.txt").write_text("ok"))
    assert (rebuilt / "ok.txt").exists() and not (rebuilt / "half.txt").exists()
