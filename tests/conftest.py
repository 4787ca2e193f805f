import pytest

# A recipe small enough to build in a few seconds: for determinism and cache tests only.
SMALL_RECIPE = {
    "tokenizer": {"prose_docs": 200, "chat_docs": 200, "vocab_size": 600, "seed": 0},
    "model": {"hidden_size": 32, "n_layer": 1, "n_head": 2},
    "pretrain": {"docs": 100, "steps": 5, "batch_size": 4, "block_size": 32, "lr": 3e-3, "seed": 0},
}


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """An empty tiny-world cache, so a test builds from scratch."""
    monkeypatch.setenv("LLMTUT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def causal_base():
    """The real tiny causal base (built by `make world`, or here on first use)."""
    from llmtut.world import bases

    return bases.load_base("causal-base")


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` need CUDA: without it they are skipped, saying so (`make gpu-test` refuses to run)."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False); run `make gpu-test` on one")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
