# The two commands a practice needs: `make run` and `make test`. Only Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test check install install-test clean

run: $(VENV)/.installed-run
	$(BIN)/rapport run

test: $(VENV)/.installed-test
	$(BIN)/pytest

check: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

install: $(VENV)/.installed-run
install-test: $(VENV)/.installed-test

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Rapport needs Python 3.11 or newer (found: $$($(PYTHON) --version))."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# setuptools announces how an editable install finds the packages (a note, not a problem):
# QUIET keeps `make` output to what needs attention.
QUIET := PYTHONWARNINGS="ignore:Editable installation"

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(QUIET) $(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(QUIET) $(BIN)/pip install --quiet -e ".[test]"
	@touch $@ $(VENV)/.installed-run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
