# `make serve` and `make test` are all a new machine needs: they create .venv, install the
# project with its extras (pip's wheel cache makes the second run a no-op), then serve or test.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
CN := node_modules/.bin/cn
CONTINUE_CLI_VERSION ?= 1.5.47
# The multimodal library of llama.cpp is not used; skipping it saves ~4 minutes of build.
export CMAKE_ARGS ?= -DLLAVA_BUILD=OFF

.PHONY: setup serve test lint format bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --progress-bar on -e '.[train,mlx,dev]'
	touch $(STAMP)

$(CN):
	npm install --no-save --no-audit --no-fund --loglevel=error @continuedev/cli@$(CONTINUE_CLI_VERSION)

setup: $(STAMP)

serve: setup
	$(VENV)/bin/loragate serve

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: setup $(CN) lint
	PATH="$(CURDIR)/node_modules/.bin:$$PATH" $(VENV)/bin/pytest

bench: setup
	$(VENV)/bin/python tests/bench/run_all.py

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache
