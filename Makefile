# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint errors-doc bench clean

$(BIN)/casemsg: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(BIN)/casemsg

run: $(BIN)/casemsg
	$(BIN)/casemsg migrate --noinput -v 0
	$(BIN)/casemsg demo
	$(BIN)/casemsg serve --host 127.0.0.1 --port 8000

test: $(BIN)/casemsg
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(BIN)/casemsg
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

# docs/errors.md is generated from the error catalogue (casemsg/core/errors.py); a test keeps them equal.
errors-doc: $(BIN)/casemsg
	$(BIN)/python -c "from casemsg.core.errors import catalogue_markdown as m; open('docs/errors.md', 'w', encoding='utf-8').write(m())"

clean:
	rm -rf $(VENV) var
