# recd developer tasks: the same commands run locally and in CI (.ci/run).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv demo test lint typecheck bench soak deb clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || \
	  { echo "make: recd needs Python 3.11 or later as $(PYTHON) (Debian 12: apt-get install python3)" >&2; exit 1; }
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || \
	  { echo "make: $(PYTHON) cannot make a virtual environment: apt-get install python3-venv" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## make demo: run the recd daemon live on a demo estate whose recordings fall due over the next minutes (Ctrl-C stops it)
demo: venv
	$(PY) demo/run_demo.py

## make test: lint, types, import contracts, then the whole test suite with coverage
test: lint typecheck
	$(PY) -m pytest --cov --cov-report=term $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check recd tests bench demo
	$(VENV)/bin/ruff format --check recd tests bench demo
	$(VENV)/bin/lint-imports

typecheck: venv
	$(VENV)/bin/mypy

## make bench: throughput and memory against find, shred and dd, measured in the same run;
## the running daemon's deletion and indexing lag and its memory (BENCH_ARGS="--only deletion-lag")
bench: venv
	$(PY) -m bench.run_all $(BENCH_ARGS)

## make soak: the kill-and-recover trials (`recd --once` and the daemon), many more than CI runs
soak: venv
	RECD_KILL_TRIALS=500 $(PY) -m pytest -m slow tests/e2e -x

## make deb: the Debian package, dist/recd_<version>_<arch>.deb (DEB_VERSION=... to build another
## version, for upgrade tests); needs dpkg-dev, debhelper, python3-venv (and fakeroot when not root)
deb:
	packaging/build-deb $(if $(DEB_VERSION),--version $(DEB_VERSION))

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage build dist *.egg-info
