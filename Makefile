# `make serve` and `make test` are all a new machine needs: they create .venv, install the
# project with its extras at the versions in requirements.lock (the ones the suite last passed
# with; pip's wheel cache makes a second run a no-op), then serve or test. `make upgrade` moves
# the lock to the newest releases, but only when the whole suite passes on them.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
LOCK := requirements.lock
EXTRAS := train,mlx,plot,dev
UPGRADE_VENV := .venv-upgrade
CN := node_modules/.bin/cn
# The multimodal library of llama.cpp is not used; skipping it saves ~4 minutes of build.
export CMAKE_ARGS ?= -DLLAVA_BUILD=OFF

.PHONY: setup serve test checks lint format upgrade bench clean

$(STAMP): pyproject.toml $(LOCK)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --constraint $(LOCK) pip
	$(PY) -m pip install --progress-bar on --constraint $(LOCK) -e '.[$(EXTRAS)]'
	touch $(STAMP)

# The Continue CLI at the exact versions of package-lock.json.
$(CN): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(CN)

setup: $(STAMP)

serve: setup
	$(VENV)/bin/loragate serve

test: setup $(CN)
	$(MAKE) --no-print-directory checks

# Lint and the suite on the environment VENV names, installing nothing.
checks: lint
	PATH="$(CURDIR)/node_modules/.bin:$$PATH" $(VENV)/bin/pytest

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(VENV)/bin/deptry .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Newest releases in a separate venv; the lock is rewritten only if lint and the suite pass
# there, then .venv is brought to it. A failed upgrade leaves the lock and .venv as they were.
upgrade: $(CN)
	rm -rf $(UPGRADE_VENV)
	python3 -m venv $(UPGRADE_VENV)
	$(UPGRADE_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(UPGRADE_VENV)/bin/python -m pip install --progress-bar on --upgrade -e '.[$(EXTRAS)]'
	$(MAKE) --no-print-directory checks VENV=$(UPGRADE_VENV)
	{ echo "# The versions \`make test\` last passed with (written by \`make upgrade\`, $$(date -u +%F),"; \
	  echo "# $$($(UPGRADE_VENV)/bin/python -V)); \`make setup\` installs them as pip constraints."; \
	  $(UPGRADE_VENV)/bin/python -m pip freeze --all --exclude-editable \
	    | sed -E 's/^([^=]+==[^+]+)\+.*/\1/'; } > $(LOCK)
	rm -rf $(UPGRADE_VENV)
	$(MAKE) --no-print-directory setup

bench: setup
	$(VENV)/bin/python tests/bench/run_all.py

clean:
	rm -rf $(VENV) $(UPGRADE_VENV) node_modules .pytest_cache .ruff_cache
