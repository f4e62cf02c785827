# Two commands on a fresh machine with Python, make and root: `make demo`, `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install system-packages demo test lint typecheck pytest bench bench-notify soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Reinstall only when the project's metadata changed (editable install: code changes need none).
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The tests run a private PostgreSQL cluster and a headless Chromium: both are Debian
# packages, installed here when missing (needs root, or sudo).
system-packages:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

demo: install
	$(BIN)/vitalsd demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

pytest: install system-packages
	$(BIN)/pytest

test: lint typecheck pytest

# Issue #9: numbers and ratios to their floors, printed (bench/RESULTS.md records a run;
# about 20 minutes today: connecting 500-1000 clients takes minutes, see RESULTS.md);
# each script also runs alone, e.g. `.venv/bin/python bench/ingest.py --quick`.
bench: install system-packages
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/fanout.py --clients 100,500,1000 --seconds 8
	$(BIN)/python bench/latency.py --seconds 30
	$(BIN)/python bench/footprint.py
	$(BIN)/python bench/notify.py

# Issue #15: alert delivery to a webhook against the /ws alert latency (about 2 minutes).
bench-notify: install
	$(BIN)/python bench/notify.py

# Issue #9: 50 flaky cuffs, 100 resuming clients, 5 SIGKILL restarts; about 10 minutes.
soak: install
	$(BIN)/python bench/soak.py

clean:
	rm -rf $(VENV) build *.egg-info
