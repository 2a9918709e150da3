# FaceLive. Quick start: `make run` (the app) and `make test` (the tests); both set up first.
VENV    ?= .venv
PY      := $(VENV)/bin/python
FACELIVE := $(VENV)/bin/facelive
STAMP   := $(VENV)/.installed

.PHONY: setup run test lint bench models clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements_dev.txt pyproject.toml docker/install.sh \
          web/package.json web/package-lock.json
	bash docker/install.sh $(VENV) dev
	npm ci --prefix web --no-audit --no-fund
	touch $(STAMP)

models: setup
	$(FACELIVE) models fetch

run: models
	$(FACELIVE) serve $(ARGS)

test: setup
	$(PY) -m ruff check server tests bench
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: setup
	$(PY) -m ruff check server tests bench

bench: models
	$(PY) bench/engine.py --json

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
