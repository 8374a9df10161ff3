# make run   - set up .venv and run today's daily pipeline on the synthetic market
# make test  - set up .venv and run the whole test suite (in parallel)
# make test-fast - the same without the end-to-end snakemake runs
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: setup run test test-fast lint bench soak clean

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e . --group dev
	@touch $(INSTALLED)

setup: $(INSTALLED)

run: setup
	$(BIN)/orchestrator --daily

# Four workers on two cores: most tests wait on real snakemake and task processes.
TEST_WORKERS ?= 4

test: setup
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

test-fast: setup
	$(BIN)/python -m pytest -n $(TEST_WORKERS) -m "not slow"

lint: setup
	$(BIN)/ruff check orchestrator collectors tests bench
	$(BIN)/ruff format --check orchestrator collectors tests bench
	$(BIN)/mypy
	# snakefmt --check and snakemake --lint, allowing only the lint justified in
	# rules/common.smk (snakemake --lint exits 1 while any lint stands)
	$(BIN)/python -m pytest -q tests/test_daily_workflow.py -k lint

bench: setup
	$(BIN)/python bench/run_all.py

soak: setup
	$(BIN)/python bench/soak.py

clean:
	rm -rf $(VENV) state .snakemake
