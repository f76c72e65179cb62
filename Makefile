# signalhooks — `make test` and `make demo` set everything up on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
PORT ?= 8000

.PHONY: help venv check-redis chromium test screenshots lint docs bench bench-instructions demo clean loadtest loadtest-short

help:
	@echo "make test   - create .venv, install, run the whole suite (100% branch coverage)"
	@echo "make lint   - ruff and mypy --strict"
	@echo "make docs   - build the documentation site into site/ (MkDocs, warnings are errors)"
	@echo "make screenshots - retake docs/images/*.png with the browser test (needs Chromium)"
	@echo "make demo   - set up and serve the sample project on http://127.0.0.1:$(PORT)/"
	@echo "make bench  - run the benchmark suite and write benchmarks/results/REPORT.md"
	@echo "make bench-instructions - CPU instruction counts under callgrind, peers side by side"
	@echo "make loadtest - gunicorn + PostgreSQL + Redis under load and faults (loadtest/results/full)"
	@echo "make loadtest-short - the same in under 3 minutes (CI)"
	@echo "Variables: PYTHON=python3.12  DATABASE_URL=postgres://...  REDIS_URL=redis://...  CHROMIUM=/path"

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: '$(PYTHON)' not found. Install Python 3.11+ or pass PYTHON=/path/to/python3." >&2; exit 2; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "error: signalhooks needs Python 3.11 or newer; '$(PYTHON)' is older. Pass PYTHON=python3.12 or similar." >&2; exit 2; }
	@if [ -x $(PY) ] && ! $(PY) -c 'import sys' >/dev/null 2>&1; then rm -rf $(VENV); fi
	@if [ -x $(PY) ] && [ "$$($(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')" ]; then echo "Python changed: recreating $(VENV)"; rm -rf $(VENV); fi
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,lint,bench]'
	@rm -f $(VENV)/.installed-*
	@touch $@

venv: $(STAMP)

check-redis:
	@if [ -z "$$REDIS_URL" ] && ! command -v redis-server >/dev/null 2>&1; then \
	  echo "error: the tests need Redis. Install a redis-server binary (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis)" >&2; \
	  echo "       or point REDIS_URL at a Redis the suite may use (it only touches its own key prefix)." >&2; exit 2; fi

# The browser test drives Chromium: CHROMIUM=/path, else the first one on PATH
# (sample_project/tests/chromium.py), else Debian's package when we may install it (root
# with apt-get). Without one the browser test alone is skipped and says how to get it;
# under CI=true it fails instead.
chromium: venv
	@if ! $(PY) -m sample_project.tests.chromium && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "== installing Debian's chromium for the browser test"; \
	  apt-get install -y -q chromium >/dev/null 2>&1 \
	    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; } \
	    || echo "warning: apt-get could not install chromium" >&2; \
	fi
	@$(PY) -m sample_project.tests.chromium --explain || true

# Three runs, one per settings module: the library's suite (which alone must cover
# 100% of src/), the sample project's own tests, and the benchmarks with timing off
# so they never rot.
# Nothing here writes into the tree: the screenshots are `make screenshots`.
# 100% branch coverage is required of the SQLite run (the default). Database capture has
# code for each vendor, so a run on another database (DATABASE_URL) reports its coverage
# without requiring it: the SQLite-only paths cannot run there.
COV_FAIL_UNDER := $(if $(DATABASE_URL),--cov-fail-under=0,)

test: venv check-redis chromium
	$(PY) -m pytest tests --cov --cov-report=term-missing $(COV_FAIL_UNDER) $(PYTEST_ARGS)
	@if [ -d sample_project ]; then set -x; $(PY) -m pytest sample_project --ds=sample_project.settings -p no:cov -rs $(PYTEST_ARGS); fi
	@if [ -d benchmarks ] && ls benchmarks/bench_*.py >/dev/null 2>&1; then set -x; $(PY) -m pytest benchmarks --ds=benchmarks.settings -p no:cov --benchmark-disable $(PYTEST_ARGS); fi

# The README's screenshots, retaken by the browser test in docs/images/.
screenshots: venv check-redis chromium
	SIGNALHOOKS_SCREENSHOTS=$(CURDIR)/docs/images $(PY) -m pytest sample_project/tests/test_browser.py \
	  --ds=sample_project.settings -p no:cov -rs $(PYTEST_ARGS)

BENCH_NAME ?= $(shell $(PYTHON) -c 'import sys; print("py%d%d" % sys.version_info[:2])' 2>/dev/null)-$(if $(DATABASE_URL),postgres,sqlite)

bench: venv check-redis
	@mkdir -p benchmarks/results
	$(PY) -m pytest benchmarks --ds=benchmarks.settings -p no:cov -q \
	  --benchmark-json=benchmarks/results/$(BENCH_NAME).json --benchmark-min-rounds=20 $(PYTEST_ARGS)
	$(PY) -m benchmarks.report benchmarks/results/$(BENCH_NAME).json

# Deterministic CPU instruction counts (valgrind --tool=callgrind), SQLite in memory, the
# peers side by side in one run; added to REPORT.md when a `make bench` JSON exists.
# GOALS=1 measures only the groups of the goals (faster).
bench-instructions: venv
	@mkdir -p benchmarks/results
	$(PY) -m benchmarks.instructions $(if $(GOALS),--goals) benchmarks/results/$(BENCH_NAME).json
	@if [ -f benchmarks/results/$(BENCH_NAME).json ]; then $(PY) -m benchmarks.report benchmarks/results/$(BENCH_NAME).json; fi

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy src tests/typing_check.py

# The documentation site (docs/, mkdocs.yml) into $(SITE_DIR): the `docs` extra on top of
# the venv, then a strict build (every warning fails it). site/ is ignored by git.
SITE_DIR ?= site
DOCS_STAMP := $(VENV)/.docs-installed
$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[docs]'
	@touch $@

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir $(SITE_DIR)

# The load and fault test (loadtest/README.md): its own Redis and database
# (LOADTEST_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/signalhooks_loadtest,
# dropped and created afresh). Exit status 1 when a check fails.
LOADTEST_STAMP := $(VENV)/.loadtest-installed
$(LOADTEST_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[loadtest]'
	@touch $@

loadtest: $(LOADTEST_STAMP) check-redis
	$(PY) -m loadtest.run --full

loadtest-short: $(LOADTEST_STAMP) check-redis
	$(PY) -m loadtest.run --short

# The sample project (never run by `make test` or CI): migrate, seed and walk through
# what each hook does, then serve. Redis at REDIS_URL (default redis://127.0.0.1:6379/0),
# else an in-process cache, which the server says once (SAMPLE_REDIS_WARNED: not before).
demo: venv
	SAMPLE_REDIS_WARNED=1 $(PY) sample_project/manage.py migrate --noinput -v 0
	SAMPLE_REDIS_WARNED=1 $(PY) sample_project/manage.py demo
	@echo ""
	@echo "Serving the sample project on http://127.0.0.1:$(PORT)/  (Ctrl-C stops it)"
	@echo "with a task worker sending the mail the site queues (db_worker --backend mail)"
	@SAMPLE_REDIS_WARNED=1 $(PY) sample_project/manage.py db_worker --backend mail -v 0 & worker=$$!; \
	  trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	  $(PY) sample_project/manage.py runserver 127.0.0.1:$(PORT)

clean:
	rm -rf $(VENV) build site .coverage htmlcov .mypy_cache .ruff_cache
