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
	$(PY) -m mypy
	bash .ci/services  # PostgreSQL, Redis, nginx for the tests that start them (issue 13)
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: setup
	$(PY) -m ruff check server tests bench
	$(PY) -m mypy

bench: models
	$(PY) bench/engine.py --json

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache

# ---------------------------------------------------------------- Docker images and notebooks
# `make docker` / `make docker-gpu` build the images (docker/); `make docker-run` serves the app
# from the CPU image on https://localhost:5000 with its data in the volume facelive-data.
# `make notebook` opens notebooks/ in JupyterLab inside the container (port 8888), with the
# LFW data from TEST_DATA mounted read-only; `make notebook-local` does it from .venv.
DOCKER     ?= docker
IMAGE      ?= facelive
GPU_IMAGE  ?= facelive-gpu
NB_IMAGE   ?= facelive-notebook
TEST_DATA  ?= $(abspath $(or $(FACELIVE_TEST_DATA),../shared/data))
# The notebook image's user gets the host's uid (root's 0 becomes 1000), so that notebooks
# saved into the mounted notebooks/ stay the user's own.
NB_UID     := $(shell u=$$(id -u); [ "$$u" = 0 ] && echo 1000 || echo $$u)
NB_STAMP   := $(VENV)/.notebook-installed

.PHONY: docker docker-gpu docker-run notebook notebook-local

docker:
	$(DOCKER) build -f docker/Dockerfile -t $(IMAGE) .

docker-gpu:
	$(DOCKER) build -f docker/Dockerfile.gpu -t $(GPU_IMAGE) .

docker-run: docker
	$(DOCKER) run -it --rm -p 5000:5000 -v facelive-data:/data $(IMAGE)

notebook:
	$(DOCKER) build -f docker/Dockerfile --target notebook --build-arg UID=$(NB_UID) \
		-t $(NB_IMAGE) .
	$(DOCKER) run -it --rm -p 8888:8888 -v $(CURDIR)/notebooks:/app/notebooks \
		-v $(TEST_DATA):/shared/data:ro -v facelive-notebook-data:/data $(NB_IMAGE)

$(NB_STAMP): $(STAMP) notebooks/requirements.txt
	bash docker/install.sh $(VENV) notebook
	touch $(NB_STAMP)

notebook-local: $(NB_STAMP)
	FACELIVE_TEST_DATA=$(TEST_DATA) $(VENV)/bin/jupyter lab --notebook-dir=notebooks
