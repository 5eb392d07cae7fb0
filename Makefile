# Two commands: `make bench` (set up + run the default benchmark) and `make test` (set up + tests).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: bench test setup leaderboard efficiency clean-cache

setup: $(STAMP)

# torch first, pinned: this machine has a local CPU wheel of 2.13.0; an unpinned torch pulls a
# multi-GB CUDA build. Re-installs when pyproject.toml changes.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev,cluster]'
	@touch $(STAMP)

bench: $(STAMP)
	$(BIN)/rppg-bench bench protocol=synthetic_cross trainer=quick

test: $(STAMP)
	$(BIN)/python -m pytest

leaderboard: $(STAMP)
	$(BIN)/rppg-bench leaderboard

efficiency: $(STAMP)
	$(BIN)/rppg-bench efficiency device=cpu

clean-cache:
	rm -rf cache runs outputs
