# Developer entry points. Everything runs inside ./.venv, which is created on first use.
#
#   make run                 install Botical into .venv and start `botical serve`
#   make test [ARGS=...]     install the test extras and Chromium (.ci/prepare), run pytest
#                            (with ARGS), ruff check, mypy
#   make lint                ruff check, ruff format --check and mypy
#   make format              ruff's safe fixes, then ruff format
#   make bench [ARGS=...]    run bench/run.py
#   make clean               remove build output and caches (keeps .venv)
#   make distclean           clean, and remove .venv too
#
# The stamp files .venv/.installed and .venv/.installed-test depend on pyproject.toml, so the
# install steps run again only when it changes.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help run test lint format bench clean distclean

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))

$(VENV)/.created:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
		echo "make: Botical needs Python 3.11 or newer; '$(PYTHON)' is not (use make PYTHON=python3.12)" >&2; \
		exit 1; }
	$(PYTHON) -m venv $(VENV) || { \
		echo "make: '$(PYTHON) -m venv' failed; on Debian/Ubuntu install python3-venv" >&2; \
		exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	@touch $@

$(VENV)/.installed: pyproject.toml | $(VENV)/.created
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml plugins/botical-example/pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pip install --quiet --no-deps -e plugins/botical-example
	@touch $@

run: $(VENV)/.installed
	exec $(BIN)/botical serve $(ARGS)

test: $(VENV)/.installed-test
	@bash .ci/prepare
	$(BIN)/pytest $(ARGS)
	$(BIN)/ruff check .
	$(BIN)/mypy

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.installed-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(VENV)/.installed-test
	@test -f bench/run.py || { \
		echo "make bench: bench/run.py does not exist (no benchmarks yet)" >&2; exit 1; }
	$(BIN)/python bench/run.py $(ARGS)

clean:
	rm -rf build dist test-artifacts .pytest_cache .ruff_cache .coverage htmlcov *.egg-info
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
