# gansweep: every command sets up what it needs (virtualenv, pinned dependencies, MNIST, the evaluator) and
# skips what is already done, so running one twice reinstalls nothing.
#   make run     the main job: the post's eight runs (smoke-sized) on 2 joblib workers, then the report
#   make test    ruff + the test suite (what CI runs)
#   make ui      the MLflow UI on the project's store, bound to 127.0.0.1
#   make analyze STUDY=failed_architectures   regenerate a study's tables, plots and report
#   make publish STUDY=failed_architectures   write its answer to experiments/<study>/ and README's findings
#   make bench   engine, data, evaluator, runner and analysis benchmarks (prints figures; benchmarks/)
#   make bench-results   short runs of the benchmarks written to benchmarks/RESULTS.md (a few CPU-minutes)
#   make server  a PostgreSQL-backed MLflow server on 127.0.0.1 (scripts/mlflow-server.sh; prints its URI)
#   make slurm   a real single-node SLURM cluster on this machine (scripts/slurm-local.sh; root)
#   make test-integration   the SLURM, PostgreSQL-server and browser tests (docs/SCALING.md)

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.gansweep-installed
PORT   ?= 5000
STUDY  ?= quickstart

.PHONY: run test lint ui analyze publish bench bench-results data evaluator setup lock clean-results \
	server server-stop slurm slurm-stop test-integration

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "gansweep needs Python 3.11+, found " + sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

setup: $(STAMP)

data: $(STAMP)
	@$(BIN)/gansweep-data fetch

evaluator: data
	@$(BIN)/gansweep-evaluator train

run: evaluator
	$(BIN)/gansweep-train -m experiment=quickstart hydra/launcher=joblib hydra.launcher.n_jobs=2
	$(BIN)/gansweep-analyze experiment=quickstart
	@echo ""
	@echo "Runs:    MLflow store $(CURDIR)/mlruns.db (experiment 'quickstart'); outputs under multirun/quickstart/"
	@echo "Report:  $(CURDIR)/reports/quickstart/report.md"
	@echo "Browse:  make ui   (then open http://127.0.0.1:$(PORT))"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: evaluator lint
	$(BIN)/pytest

analyze: $(STAMP)
	$(BIN)/gansweep-analyze experiment=$(STUDY)

publish: $(STAMP)
	$(BIN)/gansweep-analyze experiment=$(STUDY) --publish

# The team tracking server: PostgreSQL + mlflow server --serve-artifacts, state in .server/ (GANSWEEP_SERVER_DIR).
server: $(STAMP)
	@$(BIN)/python -c 'import psycopg' 2>/dev/null || $(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[server]'
	@scripts/mlflow-server.sh start

server-stop:
	@scripts/mlflow-server.sh stop

# A single-node SLURM cluster (munged, slurmctld, slurmd), state in .slurm/ (GANSWEEP_SLURM_DIR).
slurm:
	@scripts/slurm-local.sh start

slurm-stop:
	@scripts/slurm-local.sh stop

# The integration tests start (and stop) their own server and cluster in temporary folders.
test-integration: evaluator
	$(BIN)/pytest -m integration --durations=0

ui: $(STAMP)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlruns.db --host 127.0.0.1 --port $(PORT)

bench: evaluator
	$(BIN)/gansweep-bench
	$(BIN)/python -m benchmarks.adam
	$(BIN)/gansweep-data info
	$(BIN)/gansweep-evaluator bench
	$(BIN)/python -m benchmarks.runner
	$(BIN)/gansweep-analyze --bench

# benchmarks/RESULTS.md: each benchmark's section rewritten from a short run (the runner's, about 8 minutes,
# only by hand: $(BIN)/python -m benchmarks.runner --write-results).
bench-results: evaluator
	$(BIN)/gansweep-bench --quick --write-results
	$(BIN)/python -m benchmarks.adam --repeats 50 --write-results
	$(BIN)/python -m benchmarks.evaluator --sizes 1000 --repeats 1 --write-results
	$(BIN)/python -m benchmarks.regenerate --write-results

# Re-pin requirements.lock from a fresh resolve of pyproject's dependencies (+ dev extras).
lock:
	rm -rf /tmp/gansweep-lock && $(PYTHON) -m venv /tmp/gansweep-lock
	/tmp/gansweep-lock/bin/pip install --quiet -e '.[dev,server]'
	(echo "# Pinned, tested set for Python 3.11 on Linux (pip freeze of a fresh resolve). Regenerate: make lock"; \
	 /tmp/gansweep-lock/bin/pip freeze --exclude-editable) > requirements.lock

clean-results:
	rm -rf mlruns.db optuna.db mlartifacts outputs multirun reports
