import json
import shutil

import pytest

from llmtut.world import cache

MODULE = "llmtut.world.words"  # a real world module, for keys in the tests that only build files


def test_build_runs_once_and_is_reused(tmp_cache):
    calls = []

    def build(out):
        calls.append(out)
        (out / "artifact.txt").write_text("built")

    first = cache.cached_build("thing", {"a": 1}, build, MODULE)
    second = cache.cached_build("thing", {"a": 1}, build, MODULE)
    assert first == second and len(calls) == 1
    assert (first / "artifact.txt").read_text() == "built"
    assert json.loads((first / "recipe.json").read_text()) == {"a": 1}
    assert first.parent == tmp_cache


def test_recipe_or_code_change_gives_a_new_key():
    assert cache.recipe_hash({"a": 1}, MODULE) != cache.recipe_hash({"a": 2}, MODULE)
    assert cache.recipe_hash({"a": 1}, MODULE) != cache.recipe_hash({"a": 1}, "llmtut.world.science")
    assert cache.recipe_hash({"a": 1, "b": 2}, MODULE) == cache.recipe_hash({"b": 2, "a": 1}, MODULE)


def test_the_code_of_a_key_is_found_from_the_imports():
    closure = cache.module_closure("llmtut.world.bases")
    # bases imports tasks, which imports words; the formats come from outside the wing
    assert {"llmtut.world.bases", "llmtut.world.tasks", "llmtut.world.words", "llmtut.world.bpe",
            "llmtut.world.pretrain", "llmtut.world.cache", "llmtut.formats"} == set(closure)
    assert "llmtut.world.dialogues" in cache.module_closure("llmtut.world.detox_models")
    assert "llmtut.world.science" in cache.module_closure("llmtut.world.pdss_models")
    with pytest.raises(ValueError, match="not a Python module"):
        cache.module_closure("llmtut.no_such_module")


@pytest.fixture
def package_copy(tmp_path, monkeypatch):
    """A copy of the llmtut sources that the cache reads instead of the real ones, to edit freely."""
    copy = tmp_path / "llmtut"
    shutil.copytree(cache.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__", "data"))
    monkeypatch.setattr(cache, "PACKAGE_DIR", copy)
    cache.module_closure.cache_clear()
    yield copy
    cache.module_closure.cache_clear()


@pytest.mark.parametrize(
    ("edited", "changes_key"),
    [
        ("world/tasks.py", True),  # imported by bases through no list of ours: found from the import
        ("world/words.py", True),  # imported by tasks, which bases imports
        ("formats.py", True),  # the shared formats the world writes
        ("instructions.py", False),  # a lesson module: never part of a world key
        ("profiles.py", False),  # imports the world, is not imported by it
        ("world/science.py", False),  # another artifact's world module
    ],
)
def test_an_edit_changes_the_key_of_the_artifacts_that_import_it(package_copy, edited, changes_key):
    before = cache.code_hash("llmtut.world.bases")
    with (package_copy / edited).open("a") as f:
        f.write("\n# an edit\n")
    assert (cache.code_hash("llmtut.world.bases") != before) == changes_key


def test_interrupted_build_leaves_no_artifact(tmp_cache):
    def failing(out):
        (out / "half.txt").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.cached_build("thing", {"a": 1}, failing, MODULE)
    assert not any(p.name.startswith("thing-") for p in tmp_cache.iterdir())
    rebuilt = cache.cached_build("thing", {"a": 1}, lambda out: (out / "ok.txt").write_text("ok"), MODULE)
    assert (rebuilt / "ok.txt").exists() and not (rebuilt / "half.txt").exists()
