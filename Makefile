# llmtut: build the book and run its tests, offline, on CPU.
#
#   make book   create .venv, build the tiny world, execute every chapter, render _build/html
#   make test   same environment; lint, unit tests, every chapter through papermill
#
# torch is installed first and on its own (CPU wheel by default) so that resolving the
# rest never pulls CUDA wheels; everything else is pinned by constraints.txt.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH_SPEC ?= torch==2.13.0+cpu
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

export TOKENIZERS_PARALLELISM = false
export HF_HUB_DISABLE_TELEMETRY = 1

.PHONY: help install world book test unit baseline bench hub-rehearsal gpu-test lint sync constraints clean

help:
	@echo "make book         build the offline book into _build/html (tiny profile)"
	@echo "make test         lint + unit tests + every chapter through papermill (tiny profile) + drift check"
	@echo "make unit         lint + unit tests only: the fast inner loop (about 2 minutes)"
	@echo "make baseline     rewrite tests/baselines/tiny-cpu.json from this machine's chapter runs"
	@echo "make bench        wall time, peak memory and speed-ups per chapter against their targets"
	@echo "make hub-rehearsal every chapter's hub profile, offline, on the stand-in Hub (part of make test)"
	@echo "make gpu-test     every chapter through papermill on a CUDA GPU, with a wall-time table (see README)"
	@echo "make lint         ruff on llmtut, tests and notebooks/*.py"
	@echo "make sync         re-pair notebooks/*.py -> notebooks/*.ipynb (jupytext)"
	@echo "make world        build and cache the tiny world (tokenizers, models)"
	@echo "make constraints  refresh constraints.txt from the current $(VENV)"
	@echo "make clean        remove _build"

# The stamp is remade when the dependencies or the pins change.
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -c constraints.txt "$(TORCH_SPEC)" --extra-index-url $(TORCH_INDEX) --retries 1 --timeout 20
	$(PIP) install -c constraints.txt -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# The Colab twin: Colab's preinstalled versions (colab-image.txt) first, then llmtut on top, unpinned, as
# the chapters' install cell does on Colab: pip keeps what satisfies llmtut and upgrades or adds the rest.
# Same torch as .venv (a CPU build; Colab has 2.11+cu128) and this machine's Python (Colab has 3.13).
COLAB_VENV ?= .venv-colab
$(COLAB_VENV)/.installed: pyproject.toml colab-image.txt colab-install.txt
	test -x $(COLAB_VENV)/bin/python || $(PYTHON) -m venv $(COLAB_VENV)
	$(COLAB_VENV)/bin/python -m pip install "$(TORCH_SPEC)" --extra-index-url $(TORCH_INDEX) --retries 1 --timeout 20
	$(COLAB_VENV)/bin/python -m pip install -r colab-image.txt
	$(COLAB_VENV)/bin/python -m pip install -e ".[dev]"
	$(COLAB_VENV)/bin/python -m pip freeze --exclude-editable > $(COLAB_VENV)/freeze.txt
	touch $@

world: install
	$(PY) -m llmtut.world build

book: world
	LLMTUT_PROFILE=tiny $(VENV)/bin/jupyter-book build --all .
	@echo "The book is at $(CURDIR)/_build/html/index.html"

test: world lint
	LLMTUT_PROFILE=tiny $(PY) -m pytest -v -ra --durations=15 -m "not rehearsal" || \
		{ cat _build/baselines/tiny-cpu.md 2>/dev/null; exit 1; }
	@cat _build/baselines/tiny-cpu.md 2>/dev/null || true
	$(MAKE) hub-rehearsal

# The inner loop: lint and the unit tests; no chapter, no served model, no slow test (about 2 minutes).
unit: world lint
	LLMTUT_PROFILE=tiny $(PY) -m pytest -q -ra --durations=5 -m "not notebook and not rehearsal and not serve and not slow"

# Rewrite tests/baselines/tiny-cpu.json from this machine's chapter runs, on purpose (commit the diff).
baseline: world
	LLMTUT_PROFILE=tiny LLMTUT_WRITE_BASELINE=1 $(PY) -m pytest -v -ra -m notebook tests/test_notebooks.py
	git --no-pager diff --stat tests/baselines/

# Speed and memory: per chapter wall time and peak memory, 07's speed-ups over 3 kernels, the world's
# build times; against their targets. Not part of make test. Report: _build/bench/report.md.
bench: world
	LLMTUT_PROFILE=tiny $(PY) tests/bench.py

# Every chapter's hub profile against the stand-in Hub (llmtut.world.hub), offline, with small step
# counts, in the Colab twin; report: _build/rehearsal/report.md. `make test` runs it too.
hub-rehearsal: world $(COLAB_VENV)/.installed
	$(COLAB_VENV)/bin/python -m pytest -v -ra tests/test_colab_install.py -k twin
	$(COLAB_VENV)/bin/python -m pytest -v -ra -m rehearsal tests/test_hub_rehearsal.py
	@echo "Report: $(CURDIR)/_build/rehearsal/report.md"

# On a GPU machine, with a CUDA build of torch in its own venv:
#   make gpu-test VENV=.venv-gpu TORCH_SPEC=torch==2.13.0 TORCH_INDEX=https://download.pytorch.org/whl/cu128
gpu-test: world lint
	@$(PY) -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else \
		'make gpu-test needs a CUDA GPU, and torch ' + torch.__version__ + ' in $(VENV) sees none. On a GPU ' \
		'machine run: make gpu-test VENV=.venv-gpu TORCH_SPEC=torch==2.13.0 ' \
		'TORCH_INDEX=https://download.pytorch.org/whl/cu128')"
	LLMTUT_PROFILE=tiny LLMTUT_DEVICE=cuda $(PY) -m pytest -v -ra -m gpu tests/test_gpu.py
	@echo "Per-chapter wall times: $(CURDIR)/_build/gpu/timings.md"

lint: install
	$(VENV)/bin/ruff check llmtut tests notebooks/*.py

sync: install
	$(VENV)/bin/jupytext --sync notebooks/*.py

# torch is dropped from the pins: it is installed separately, first, from TORCH_SPEC.
constraints: install
	$(PIP) freeze --exclude-editable \
		| grep -viE '^(torch==|-e |llmtut([=@ ]|$$))' > constraints.txt.tmp
	{ echo "# Pins for everything but torch (installed first from TORCH_SPEC). Refresh: make constraints"; \
	  cat constraints.txt.tmp; } > constraints.txt
	rm -f constraints.txt.tmp
	touch $(VENV)/.installed  # the environment is what the new pins describe

clean:
	rm -rf _build
