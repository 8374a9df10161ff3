# make run   - set up .venv and run today's daily pipeline on the synthetic market
# make test  - set up .venv and run the whole test suite (in parallel)
# make test-fast - the same without the end-to-end snakemake runs and the browser tests
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# The cluster's virtualenv: the project with its `slurm` extra (Snakemake's Slurm executor),
# kept apart because Snakemake imports every installed executor plugin at each start.
SLURM_VENV := .venv-slurm
SLURM_INSTALLED := $(SLURM_VENV)/.installed

.PHONY: setup slurm-setup run test test-fast lint bench soak docs clean clean-state browser

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed; set PYTHON=python3.11")'
	$(PYTHON) -m venv --clear $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e . --group dev
	@touch $(INSTALLED)

setup: $(INSTALLED)

# --clear: a half-made or outdated virtualenv is made again, never patched. The bundled
# pip is enough for an extra (no dependency groups).
$(SLURM_INSTALLED): pyproject.toml
	$(PYTHON) -m venv --clear $(SLURM_VENV)
	$(SLURM_VENV)/bin/python -m pip install --quiet -e '.[slurm]'
	@touch $(SLURM_INSTALLED)

# tests/test_slurm_cluster.py runs this itself; a cluster's submit host needs only
# `pip install -e '.[slurm]'` in its own virtualenv.
slurm-setup: $(SLURM_INSTALLED)

run: setup
	$(BIN)/orchestrator --daily

# Four workers on two cores: most tests wait on real snakemake and task processes.
TEST_WORKERS ?= 4

# loadgroup: the tests of one xdist_group (the local Slurm cluster's) share one worker.
test: setup
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

test-fast: setup
	$(BIN)/python -m pytest -n $(TEST_WORKERS) -m "not slow and not browser"

# Debian's chromium for the browser tests (tests/test_web_browser.py); never `playwright install`.
browser:
	bash scripts/install-chromium

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

# The market database reference, generated from the store's table definitions.
docs: setup
	$(BIN)/python -m collectors.market_schema_doc > docs/market-database.md

# Build products only: the virtualenv and tool caches. Never the collected data.
clean:
	rm -rf $(VENV) $(SLURM_VENV) .pytest_cache .ruff_cache .mypy_cache *.egg-info
	find . -name __pycache__ -type d -prune -not -path './state/*' -exec rm -rf {} +

# Everything the pipeline collected and recorded: explicit, and it says so.
clean-state:
	@echo "Deleting state/ (market.db: the collected market data; status.db: the run history;"
	@echo "sentinels, logs, locks, caches) and .snakemake/ (Snakemake's job records)."
	find state -mindepth 1 -not -name README.md -delete
	rm -rf .snakemake
