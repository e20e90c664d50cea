# Alongside: `make run` serves the product with demo data, `make test` runs lint and every test.
# Both create the virtual environment from uv.lock first; only Python 3.11 is needed.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(shell command -v uv 2>/dev/null || echo .venv-uv/bin/uv)

.PHONY: run test bench faults soak lint migrate seed install clean

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	UV_PYTHON=$(PYTHON) $(UV) sync --frozen
	touch $@

# uv installs the locked environment in seconds; on a machine without it we bootstrap it from PyPI.
.venv-uv/bin/uv:
	$(PYTHON) -m venv .venv-uv
	.venv-uv/bin/pip install --quiet uv

install: $(VENV)/.synced

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	$(PY) -m config.devserver

test: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m config.testenv

# `make bench BENCH=home` runs only the benchmark modules whose name contains "home".
bench: install
	$(PY) -m bench.run $(BENCH)

# `make faults` kills the ASGI server, Redis, Postgres and a Celery worker mid-work and checks nothing was lost
# (FAULTS=redis runs one; see docs/reliability.md). `make soak` holds 200 clients for 30 minutes
# (SOAK="--minutes 5 --clients 80" for less). Both need Postgres and Redis, like `make bench live`.
faults: install
	$(PY) -m faults.run $(FAULTS)

soak: install
	$(PY) -m faults.soak $(SOAK)

lint: install
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

clean:
	rm -rf var staticfiles
