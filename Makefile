# Two commands do all the set-up on a fresh machine with Python >= 3.11:
#   make demo   - the sandbox demo (embedded SQLite)
#   make test   - lint, type-check and the whole test suite (SQLite and PostgreSQL)

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The exact versions the suite was run with; `make lock` refreshes them (README "Tests").
LOCK   := constraints.txt
# Reinstall when the dependency list or the pinned versions change.
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml $(LOCK) | cksum | cut -d' ' -f1)
PIP    := -m pip install --quiet --disable-pip-version-check

.PHONY: demo test lint typecheck pytest bench mutate run sandbox clean lock

$(STAMP): pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; sys.exit("Python >= 3.11 is required, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python $(PIP) -c $(LOCK) -e ".[dev]"
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

# Two workers (this project's machines have two cores); a test file stays on one worker.
# -rs: a skipped test prints its reason (under CI=true none may skip: they fail instead).
PYTEST_WORKERS ?= 2
pytest: $(STAMP)
	$(BIN)/pytest -q -rs -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# Mutation testing of the rules (spnbot/domain) against tests/unit; see README "Tests".
mutate: $(STAMP)
	rm -rf mutants
	$(BIN)/mutmut run
	$(BIN)/mutmut results

# Payments burst and chat load against their floors; see README "Performance".
bench: $(STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

run: $(STAMP)
	$(BIN)/spnbot run

sandbox: $(STAMP)
	$(BIN)/spnbot sandbox

# Re-resolve every dependency (runtime and dev) to the newest versions pyproject.toml allows,
# in a scratch venv, and pin them; then run `make test` and commit constraints.txt with the result.
lock:
	@rm -rf $(VENV)-lock
	@$(PYTHON) -m venv $(VENV)-lock
	@$(VENV)-lock/bin/python $(PIP) ".[dev]"
	@{ echo "# Exact versions SPN is tested with (Python $$($(VENV)-lock/bin/python -c 'import platform; print(platform.python_version())')). Refresh: make lock"; \
	   echo "# Used as pip constraints: pip install -c constraints.txt ."; \
	   $(VENV)-lock/bin/python -m pip freeze --exclude spnbot; } > $(LOCK)
	@rm -rf $(VENV)-lock
	@echo "$(LOCK): $$(grep -c '==' $(LOCK)) pins; now run make test"

clean:
	rm -rf $(VENV) $(VENV)-lock .pytest_cache .mypy_cache .ruff_cache
