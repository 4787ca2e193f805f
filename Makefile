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

.PHONY: help install world book test gpu-test lint sync constraints clean

help:
	@echo "make book         build the offline book into _build/html (tiny profile)"
	@echo "make test         lint + unit tests + every chapter through papermill (tiny profile)"
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

world: install
	$(PY) -m llmtut.world build

book: world
	LLMTUT_PROFILE=tiny $(VENV)/bin/jupyter-book build --all .
	@echo "The book is at $(CURDIR)/_build/html/index.html"

test: world lint
	LLMTUT_PROFILE=tiny $(PY) -m pytest -v -ra --durations=15

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
