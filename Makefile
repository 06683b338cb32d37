# scrapekit developer tasks. `make demo` and `make test` work on a fresh machine with Python >= 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test crash check lint typecheck bench bench-durable bench-selectors clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m scrapekit.demo run --output demo.jsonl

lint: $(STAMP)
	$(BIN)/ruff check scrapekit spiders tests bench
	$(BIN)/ruff format --check scrapekit spiders tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck

test: check
	$(BIN)/python -m pytest

crash: $(STAMP)
	$(BIN)/python -m pytest -m crash tests/crash

bench: $(STAMP)
	$(BIN)/python bench/run.py

bench-durable: $(STAMP)
	$(BIN)/python bench/durable.py

bench-selectors: $(STAMP)
	$(BIN)/python bench/selector_cost.py

clean:
	rm -rf $(VENV) .scrapekit demo.jsonl .pytest_cache .mypy_cache .ruff_cache
