# Sales analytics platform: every job has a target; `make` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

CARGO       ?= cargo
# One optimised profile for everything (CLI, tests, benchmarks): the heavy
# crates (polars) are compiled once, not once per profile.
PROFILE     ?= release
BIN         := $(or $(CARGO_TARGET_DIR),target)/$(PROFILE)/analytics
DATA        ?= data/curated
LINES       ?= 500k
SEED        ?= 42
DEFECT_RATE ?= 0.01
VENV        ?= .venv
EVCXR_VERSION := 0.22.0
# Small data for the notebook tests (fast to execute, every chart non-empty).
TEST_DATA    ?= $(or $(CARGO_TARGET_DIR),target)/test-data/curated
TEST_REPORTS ?= $(or $(CARGO_TARGET_DIR),target)/test-reports

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

XGBOOST_LIB := third_party/xgboost-cpu/xgboost/lib/libxgboost.so

# System prerequisites, checked in the first seconds (before any long build)
# and installed with apt-get when running as root; otherwise one message says
# what to install. PREREQS_NO_INSTALL=1 only checks.
.PHONY: prereqs prereqs-python prereqs-e2e prereqs-image prereqs-lambda
prereqs: ## Check (and as root install) what the build needs: C toolchain, libclang, python3 + pip
	@scripts/prereqs.sh build
prereqs-python:
	@scripts/prereqs.sh python
prereqs-e2e:
	@scripts/prereqs.sh node browser
prereqs-image:
	@scripts/prereqs.sh image
prereqs-lambda:
	@scripts/prereqs.sh lambda

# What `setup` builds: the binaries. Under `make test` every target instead,
# as the lint build does: `cargo build` alone leaves out the dev-dependencies,
# so some crates resolve other features and would be compiled a second time.
# The Lambda build (serve-lambda) is left out: `make test-lambda` builds it.
SETUP_BUILD ?= build --profile $(PROFILE) --workspace --exclude serve-lambda

.PHONY: setup
setup: prereqs $(XGBOOST_LIB) ## Check the toolchain, fetch XGBoost, build the command line (release)
	$(CARGO) $(SETUP_BUILD)

# The prebuilt XGBoost library comes from the PyPI wheel `xgboost-cpu`; building
# its Rust bindings needs libclang (checked by `prereqs`).
$(XGBOOST_LIB): | prereqs
	scripts/fetch-xgboost.sh

.PHONY: build
build: setup ## Alias of setup

.PHONY: data
data: setup ## Generate the curated tables into $(DATA) (LINES=500k SEED=42 DEFECT_RATE=0.01)
	$(BIN) generate --lines $(LINES) --seed $(SEED) --defect-rate $(DEFECT_RATE) --out $(DATA)

.PHONY: clean-report
clean-report: ## Validate and clean $(DATA); print the cleaning report
	$(BIN) clean --data $(DATA)

.PHONY: kpis
kpis: ## Print the KPIs of $(DATA) (revenue, orders, ticket médio, churn, …)
	$(BIN) kpis --data $(DATA)

MODELS      ?= models
BENCH_DATA  ?= $(or $(CARGO_TARGET_DIR),target)/bench-data/1M
BENCH_RUNS  ?= 3

# Where train, retrain and serve read the curated data: `--data $(DATA)` when
# DATA is given (`make train DATA=…`, or in the environment) or when no source
# is configured; otherwise the configured source, with no --data: APP_SOURCE
# (e.g. snowflake, with the APP_SNOWFLAKE_* variables) for the jobs, and for
# serve also its settings file (APP_CONFIG) or APP_DATA.
DATA_GIVEN  := $(filter command line environment,$(origin DATA))
JOB_DATA     = $(if $(or $(DATA_GIVEN),$(if $(APP_SOURCE),,none)),--data $(DATA))
SERVE_DATA   = $(if $(or $(DATA_GIVEN),$(if $(APP_SOURCE)$(APP_CONFIG)$(APP_DATA),,none)),--data $(DATA))

.PHONY: train
train: ## Fit, evaluate out of time and save the models to $(MODELS)/ (data: DATA, else APP_SOURCE, else data/curated)
	OMP_WAIT_POLICY=PASSIVE $(BIN) train $(JOB_DATA) --models $(MODELS)

.PHONY: retrain
retrain: ## The retrain job (data: DATA, else APP_SOURCE, else data/curated): drift, champion vs challenger, promotion in $(MODELS)/; skips unchanged data (RETRAIN_FLAGS=--force)
	OMP_WAIT_POLICY=PASSIVE $(BIN) retrain $(JOB_DATA) --models $(MODELS) $(if $(wildcard params.yaml),--params params.yaml) $(RETRAIN_FLAGS)

.PHONY: bench
bench: setup ## The pipeline benchmark (shared/spec/benchmark.md) on 1M generated lines, as JSON
	@test -d $(BENCH_DATA) || $(BIN) generate --lines 1M --seed 42 --out $(BENCH_DATA)
	OMP_WAIT_POLICY=PASSIVE $(BIN) bench --data $(BENCH_DATA) --json

.PHONY: bench-compare
bench-compare: setup ## The pipeline benchmark against the reference stack (pandas + scikit-learn + xgboost), with ratios
	@test -d $(BENCH_DATA) || $(BIN) generate --lines 1M --seed 42 --out $(BENCH_DATA)
	@test -x .venv-bench/bin/python || { python3 -m venv .venv-bench && .venv-bench/bin/pip install -q pandas pyarrow scikit-learn xgboost; }
	@# BENCH_RUNS runs of each side, alternating; compare.py takes each stage's median.
	@for i in $$(seq 1 $(BENCH_RUNS)); do \
	  echo "bench-compare: run $$i of $(BENCH_RUNS)" >&2; \
	  OMP_WAIT_POLICY=PASSIVE $(BIN) bench --data $(BENCH_DATA) --json > $(BENCH_DATA)/../ours-$$i.json || exit 1; \
	  OMP_WAIT_POLICY=PASSIVE .venv-bench/bin/python bench/reference.py $(BENCH_DATA) > $(BENCH_DATA)/../reference-$$i.json || exit 1; \
	done
	python3 bench/compare.py --ours $$(seq -f '$(BENCH_DATA)/../ours-%g.json' 1 $(BENCH_RUNS)) \
	  --reference $$(seq -f '$(BENCH_DATA)/../reference-%g.json' 1 $(BENCH_RUNS))

SIZES ?= 1M,10M
# Runs per size, the sizes taking turns; bench/scale.py reports each stage's median.
SCALE_RUNS ?= 3

.PHONY: bench-scale
bench-scale: setup ## The pipeline benchmark at several sizes (SIZES=1M,10M, SCALE_RUNS=3 in turn, medians): seconds per million lines, growth, peak memory
	OMP_WAIT_POLICY=PASSIVE python3 bench/scale.py --bin $(BIN) --sizes $(SIZES) --runs $(SCALE_RUNS) \
	  --data-root $(or $(CARGO_TARGET_DIR),target)/bench-data --json $(or $(CARGO_TARGET_DIR),target)/bench-data/scale.json

MEM_DATA   ?= $(or $(CARGO_TARGET_DIR),target)/bench-data/10M
MEM_MODELS ?= $(or $(CARGO_TARGET_DIR),target)/bench-models/memory

.PHONY: bench-serve-memory
bench-serve-memory: setup ## serve's resident and peak memory once ready on $(MEM_DATA) (models trained on 1M lines)
	@test -d $(BENCH_DATA) || $(BIN) generate --lines 1M --seed 42 --out $(BENCH_DATA)
	@test -d $(MEM_DATA) || $(BIN) generate --lines 10M --seed 42 --out $(MEM_DATA)
	@test -f $(MEM_MODELS)/segments/live.json || OMP_WAIT_POLICY=PASSIVE $(BIN) train --data $(BENCH_DATA) --models $(MEM_MODELS)
	bench/serve-memory.sh $(MEM_DATA) $(MEM_MODELS)

.PHONY: serve
serve: setup ## Run the HTTP API (release) on $(MODELS) and the data (DATA, else APP_SOURCE / APP_CONFIG / APP_DATA, else data/curated)
	$(or $(CARGO_TARGET_DIR),target)/$(PROFILE)/serve --models $(MODELS) $(SERVE_DATA)

.PHONY: run
run: data clean-report kpis train ## The main job on the bundled defaults: generate, clean, report, KPIs, train

# The evcxr kernel is installed into its own root (skipped when it is there):
# one `cargo install` of ~15 minutes per machine, shared by every clone.
EVCXR_ROOT  ?= $(HOME)/.cache/sales-analytics/evcxr-$(EVCXR_VERSION)
EVCXR       := $(EVCXR_ROOT)/bin/evcxr_jupyter
export EVCXR_ROOT

.PHONY: notebook-env
notebook-env: prereqs-python ## Install JupyterLab + nbconvert (pip, into .venv) and the evcxr Rust kernel (cargo; skipped when present)
	@test -x $(VENV)/bin/jupyter-lab || { python3 -m venv $(VENV) && $(VENV)/bin/pip install -q -r requirements-notebooks.txt; }
	@test -x $(EVCXR) || { echo "installing evcxr_jupyter $(EVCXR_VERSION) into $(EVCXR_ROOT) (about 15 minutes, once per machine)" >&2; \
	  $(CARGO) install evcxr_jupyter --locked --version $(EVCXR_VERSION) --root $(EVCXR_ROOT); }
	@rustup component add rust-src >/dev/null 2>&1 || echo "rust-src not installed: completions off, execution unaffected" >&2
	@JUPYTER_PATH=$(VENV)/share/jupyter $(EVCXR) --install >/dev/null

LAB_PORT ?= 8888

.PHONY: lab
lab: notebook-env $(XGBOOST_LIB) ## Open the notebooks in JupyterLab (Rust kernel) on http://127.0.0.1:$(LAB_PORT), on $(DATA)
	@test -d $(DATA) || $(MAKE) data
	ANALYTICS_DATA=$(DATA) LAB_PORT=$(LAB_PORT) scripts/lab.sh

.PHONY: reports
reports: notebook-env $(XGBOOST_LIB) ## Execute every notebook on $(DATA): reports/NAME.html (reader's), NAME.code.html (full), index.html (offline)
	@test -d $(DATA) || $(MAKE) data
	ANALYTICS_DATA=$(DATA) scripts/run-notebooks.sh

.PHONY: test-notebooks
test-notebooks: notebook-env setup ## Execute the notebooks on small generated data, check the reports, start JupyterLab
	$(BIN) generate --lines 20k --seed 7 --out $(TEST_DATA)
	ANALYTICS_DATA=$(TEST_DATA) REPORTS_DIR=$(TEST_REPORTS) scripts/run-notebooks.sh
	REPORTS_DIR=$(TEST_REPORTS) ANALYTICS_DATA=$(TEST_DATA) $(VENV)/bin/python -m pytest -q tests/notebooks tests/setup

.PHONY: fmt
fmt: ## Format the code
	$(CARGO) fmt --all

# Linting is part of the build, not a second build: clippy-driver compiles the
# workspace's own crates in place of rustc (RUSTC_WORKSPACE_WRAPPER), with
# warnings as errors, so the dependencies are compiled once, for the tests, and
# never again in clippy's check mode. Every cargo command of `make test` runs
# with this environment (it is part of cargo's fingerprint of our crates).
CLIPPY_DRIVER := $(shell rustup which clippy-driver 2>/dev/null || command -v clippy-driver 2>/dev/null)
LINT_ENV := RUSTC_WORKSPACE_WRAPPER=$(CLIPPY_DRIVER) CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__

.PHONY: lint
lint: prereqs $(XGBOOST_LIB) ## cargo fmt --check, then build every target with clippy (warnings as errors)
	@test -n "$(CLIPPY_DRIVER)" || { echo "clippy not found: rustup component add clippy" >&2; exit 1; }
	$(CARGO) fmt --all --check
	$(LINT_ENV) $(CARGO) test --profile $(PROFILE) --workspace --all-targets --no-run

.PHONY: test
test: export RUSTC_WORKSPACE_WRAPPER := $(CLIPPY_DRIVER)
test: export CLIPPY_ARGS := -D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__
test: export PHASE_LOG ?= $(or $(CARGO_TARGET_DIR),target)/test-phases.tsv
test: export SETUP_BUILD := test --profile $(PROFILE) --workspace --all-targets --no-run
test: ## Lint, run every Rust test, the DVC pipeline, the browser tests, the container image, the Lambda package, then execute the notebooks and check the reports
	@mkdir -p $(dir $(PHASE_LOG)) && rm -f $(PHASE_LOG)
	@scripts/timed.sh lint+build $(MAKE) --no-print-directory lint
	@scripts/timed.sh test-env $(MAKE) --no-print-directory test-env
	@scripts/timed.sh rust-tests $(CARGO) test --profile $(PROFILE) --workspace --exclude serve-lambda
	@scripts/timed.sh dvc-pipeline $(MAKE) --no-print-directory test-pipeline
	@scripts/timed.sh browser $(MAKE) --no-print-directory test-e2e
	@scripts/timed.sh image $(MAKE) --no-print-directory test-image
	@scripts/timed.sh lambda $(MAKE) --no-print-directory test-lambda
	@scripts/timed.sh notebook-env $(MAKE) --no-print-directory notebook-env
	@scripts/timed.sh notebooks $(MAKE) --no-print-directory test-notebooks
	@scripts/timed.sh --summary

.PHONY: test-env
test-env: prereqs-python prereqs-e2e mlflow-env fakesnow-env schemathesis-env dvc-env lifetimes-env ## The real services, tools and oracles the Rust tests use (MLflow server, Snowflake emulator, schemathesis, DVC, lifetimes: pip venvs); node, npm, chromium

# --- API contract (issue 16) -------------------------------------------------
# schemathesis from PyPI, pinned: serve/tests/api/schemathesis.rs runs it with
# --checks all against the release `serve` binary (keys on, real customer ids
# from serve/tests/schemathesis/hooks.py): at least 1,000 cases, no failure.
SCHEMATHESIS_VERSION ?= 4.32.5
SCHEMATHESIS_VENV    ?= .venv-schemathesis

.PHONY: schemathesis-env
schemathesis-env: prereqs-python ## Install schemathesis (pip, into .venv-schemathesis) for the API contract test
	@test -x $(SCHEMATHESIS_VENV)/bin/schemathesis && $(SCHEMATHESIS_VENV)/bin/schemathesis --version 2>/dev/null | grep -q '$(SCHEMATHESIS_VERSION)' || \
	  { python3 -m venv $(SCHEMATHESIS_VENV) && $(SCHEMATHESIS_VENV)/bin/pip install -q 'schemathesis==$(SCHEMATHESIS_VERSION)'; }

.PHONY: test-api-contract
test-api-contract: prereqs schemathesis-env $(XGBOOST_LIB) ## schemathesis (--checks all) against the release serve only
	OMP_WAIT_POLICY=PASSIVE $(CARGO) test --profile $(PROFILE) --workspace --test api schemathesis -- --nocapture

.PHONY: clean
clean: ## Remove build outputs (not data/ nor models/)
	$(CARGO) clean

.PHONY: prune-cache
prune-cache: ## When under MIN_FREE_GB (30) free: drop incremental folders, old copies of the workspace crates, 30M bench data
	scripts/prune-cache.sh $(or $(MIN_FREE_GB),30)

# --- Snowflake emulator (issue 6) ------------------------------------------
# fakesnow in server mode, for the Snowflake backend's integration tests
# (analytics-lib/tests/it/snowflake/). Connector 5.x breaks fakesnow 0.12.1.
FAKESNOW_VENV ?= .venv-fakesnow

.PHONY: fakesnow-env
fakesnow-env: prereqs-python ## Install the Snowflake emulator fakesnow (pip, into .venv-fakesnow) for the Snowflake tests
	@test -x $(FAKESNOW_VENV)/bin/fakesnow || { python3 -m venv $(FAKESNOW_VENV) && \
	  $(FAKESNOW_VENV)/bin/pip install -q 'fakesnow[server]==0.12.1' 'snowflake-connector-python<5'; }

# --- CLV oracle (issue 17) ----------------------------------------------------
# The real `lifetimes` package, against which analytics-lib's BG/NBD and
# Gamma-Gamma are tested (analytics-lib/tests/it/clv.rs runs
# tests/clv/lifetimes_oracle.py). lifetimes 0.11.3 needs numpy < 2 and an
# older pandas; these pins install from wheels on Python 3.11.
LIFETIMES_VENV ?= .venv-lifetimes

.PHONY: lifetimes-env
lifetimes-env: prereqs-python ## Install the CLV oracle lifetimes 0.11.3 (pip, into .venv-lifetimes) for the CLV tests
	@test -x $(LIFETIMES_VENV)/bin/python && $(LIFETIMES_VENV)/bin/python -c 'import lifetimes' 2>/dev/null || { \
	  python3 -m venv $(LIFETIMES_VENV) && \
	  $(LIFETIMES_VENV)/bin/pip install -q --only-binary :all: 'numpy==1.26.4' 'scipy==1.11.4' 'pandas==1.5.3' 'autograd==1.6.2' 'dill==0.3.8' && \
	  $(LIFETIMES_VENV)/bin/pip install -q --no-deps 'lifetimes==0.11.3'; }

# --- Dashboard (issue 9) -----------------------------------------------------
# Browser end-to-end test: the release serve binary on generated data, headless
# Debian chromium (/usr/bin/chromium) driven by npm playwright-core. Screenshots
# go to $(or $(CARGO_TARGET_DIR),target)/test-artifacts/.
E2E_DIR ?= tests/e2e

.PHONY: test-e2e
test-e2e: prereqs prereqs-e2e $(XGBOOST_LIB) ## Dashboard end-to-end test in headless Chromium (npm ci, then node --test)
	$(CARGO) $(SETUP_BUILD)
	@# npm ci only when the lock file changed since the last install (a second run reuses it).
	cd $(E2E_DIR) && { cmp -s package-lock.json node_modules/.installed-lock.json || \
	  { npm ci --no-audit --no-fund && cp package-lock.json node_modules/.installed-lock.json; }; }
	cd $(E2E_DIR) && OMP_WAIT_POLICY=PASSIVE node --test --test-reporter=spec dashboard.test.mjs auth.test.mjs

DASH_BENCH_DATA ?= $(or $(CARGO_TARGET_DIR),target)/bench-data/10M

.PHONY: bench-dashboard
bench-dashboard: prereqs $(XGBOOST_LIB) ## Dashboard server time per filter change on 10 M generated lines (p50/p99, peak RSS)
	$(CARGO) build --profile $(PROFILE) -p analytics-lib --bin analytics -p serve --bin serve
	@test -f $(DASH_BENCH_DATA)/orders.parquet || $(BIN) generate --lines 10M --seed 7 --out $(DASH_BENCH_DATA)
	python3 bench/dashboard.py --data $(DASH_BENCH_DATA) $(if $(DASH_BENCH_MODELS),--models $(DASH_BENCH_MODELS))

# --- Serving benchmark (issue 7) ---------------------------------------------
# wrk (Debian: apt-get install -y wrk) against the release `serve` over
# loopback, 20 s per route: /predict and /segment single records, 1,000-record
# batches. Data: $(BENCH_DATA) (1M lines, generated when missing); models:
# trained into a registry under target/bench-models/ when missing.
.PHONY: bench-api
bench-api: prereqs $(XGBOOST_LIB) ## Serving benchmark (shared/spec/benchmark.md): req/s, p50/p99, rows/s, non-2xx for /predict and /segment
	BENCH_DATA=$(BENCH_DATA) bench/load.sh

# --- Experiment tracking and data versioning (issue 8, items 4-6) -------------
# MLflow: a real tracking server for analytics-lib/tests/it/tracking.rs (the
# test starts `mlflow server` from $(MLFLOW_VENV) itself, or from $MLFLOW_BIN).
# DVC: the pipeline of dvc.yaml (data -> clean -> train -> evaluate) and its
# test in a temporary git+dvc repo (tests/pipeline/). Versions are pinned.
MLFLOW_VERSION ?= 3.17.2
DVC_VERSION    ?= 3.67.1
MLFLOW_VENV    ?= .venv-mlflow
DVC_VENV       ?= .venv-dvc
# No usage reports from DVC (the machines reach package registries only).
export DVC_NO_ANALYTICS := 1

.PHONY: mlflow-env
mlflow-env: prereqs-python ## Install the MLflow tracking server (pip, into .venv-mlflow) for the tracking tests
	@test -x $(MLFLOW_VENV)/bin/mlflow || { python3 -m venv $(MLFLOW_VENV) && \
	  $(MLFLOW_VENV)/bin/pip install -q 'mlflow==$(MLFLOW_VERSION)'; }

# `make test` (and so CI) runs the tracking test with the other Rust tests, which
# needs the MLflow server installed, and the DVC pipeline test.

.PHONY: test-tracking
test-tracking: prereqs mlflow-env $(XGBOOST_LIB) ## The MLflow tracking tests only, against a real mlflow server on loopback
	OMP_WAIT_POLICY=PASSIVE $(CARGO) test --profile $(PROFILE) -p analytics-lib --test it tracking

.PHONY: dvc-env
dvc-env: prereqs-python ## Install DVC and pytest (pip, into .venv-dvc) for the pipeline
	@test -x $(DVC_VENV)/bin/dvc || { python3 -m venv $(DVC_VENV) && \
	  $(DVC_VENV)/bin/pip install -q 'dvc==$(DVC_VERSION)' 'pytest==9.0.2' 'pyyaml==6.0.4'; }

.PHONY: dvc-repro
dvc-repro: dvc-env setup ## Reproduce the DVC pipeline (data -> clean -> train -> evaluate): reruns only what changed
	ANALYTICS_BIN=$(abspath $(BIN)) OMP_WAIT_POLICY=PASSIVE $(DVC_VENV)/bin/dvc repro

# The scheduled retrain (.github/workflows/retrain.yml) is scripts/scheduled-retrain.sh;
# `make test` runs it end to end (analytics-lib/tests/it/schedule.rs: fresh clones,
# the Snowflake emulator, a local DVC remote holding the registry). Alone:
.PHONY: test-schedule
test-schedule: dvc-env fakesnow-env $(XGBOOST_LIB) ## The scheduled-retrain script end to end (emulator + local DVC remote)
	OMP_WAIT_POLICY=PASSIVE $(CARGO) test --profile $(PROFILE) --workspace --test it schedule

.PHONY: scheduled-retrain
scheduled-retrain: ## The scheduled job: registry from the DVC remote, data (APP_SOURCE or dvc pull), retrain, registry back (scripts/scheduled-retrain.sh)
	ANALYTICS_BIN=$(abspath $(BIN)) DVC=$(DVC_VENV)/bin/dvc MODELS=$(MODELS) DATA=$(DATA) scripts/scheduled-retrain.sh

.PHONY: test-pipeline
test-pipeline: dvc-env setup ## The DVC pipeline test: dvc repro on 20k lines in a temporary git+dvc repo
	ANALYTICS_BIN=$(abspath $(BIN)) OMP_WAIT_POLICY=PASSIVE $(DVC_VENV)/bin/python -m pytest -q -s tests/pipeline

# --- Container image (issue 20) ----------------------------------------------
# The Dockerfile's runtime stage built with Debian's buildah (vfs storage,
# chroot isolation, no Docker engine, no registry) from the release binaries
# of $(or $(CARGO_TARGET_DIR),target)/$(PROFILE), on a base image made by
# debootstrap (cached in $(IMAGE_CACHE)), then run and checked:
# scripts/image.sh and tests/image/run.sh. Skipped with a message where
# buildah cannot run (not root, no namespaces).
IMAGE       ?= localhost/sales-analytics:latest
IMAGE_CACHE ?= $(HOME)/.cache/sales-analytics/image
IMAGE_ENV    = BIN_DIR=$(abspath $(or $(CARGO_TARGET_DIR),target)/$(PROFILE)) IMAGE=$(IMAGE) IMAGE_CACHE=$(IMAGE_CACHE)

.PHONY: image
image: prereqs-image setup ## Build the container image (runtime stage of the Dockerfile) with buildah from the release binaries, no Docker engine
	$(IMAGE_ENV) scripts/image.sh build

.PHONY: test-image
test-image: setup ## Build the image, run it: uid 10001, ldd, /health, /ready, /predict on a mounted registry, HEALTHCHECK
	@# As root the tools are installed; elsewhere the script says why it skips.
	@if [ "$$(id -u)" = 0 ]; then scripts/prereqs.sh image; fi
	$(IMAGE_ENV) scripts/image.sh test

# --- AWS Lambda (issue 20) -----------------------------------------------------
LAMBDA_DIR ?= $(or $(CARGO_TARGET_DIR),target)/lambda

.PHONY: package-lambda test-lambda
package-lambda: prereqs-lambda $(XGBOOST_LIB) ## The Lambda zip for provided.al2023 (bootstrap + libxgboost; MODELS=dir to include a registry)
	$(CARGO) build --profile $(PROFILE) -p serve-lambda
	BIN=$(or $(CARGO_TARGET_DIR),target)/$(PROFILE)/serve-lambda $(if $(filter command line environment,$(origin MODELS)),MODELS=$(MODELS)) scripts/package-lambda.sh $(LAMBDA_DIR)

test-lambda: prereqs-lambda $(XGBOOST_LIB) ## The Lambda package driven through a local Lambda runtime API server (/predict, /segment, 401, 400s, init errors) against the release serve
	@# --workspace, not -p serve-lambda: the features are then unified as in the
	@# lint build, so the test reuses its artifacts instead of compiling
	@# analytics-lib, smartcore and serve again without the test hooks.
	OMP_WAIT_POLICY=PASSIVE $(CARGO) test --profile $(PROFILE) --workspace --test runtime -- --nocapture --test-threads 1
