# Two commands do all the set-up on a fresh machine with Python >= 3.11:
#   make demo   - the sandbox demo (embedded SQLite)
#   make test   - lint, type-check and the whole test suite (SQLite and PostgreSQL)

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Reinstall when the dependency list changes.
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test lint typecheck pytest bench run sandbox clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Python >= 3.11 is required, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/spnbot demo

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check spnbot tests bench
	$(BIN)/ruff format --check spnbot tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -q $(PYTEST_ARGS)

# Payments burst and chat load against their floors; see README "Performance".
bench: $(STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

run: $(STAMP)
	$(BIN)/spnbot run

sandbox: $(STAMP)
	$(BIN)/spnbot sandbox

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
