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

.PHONY: setup
setup: $(XGBOOST_LIB) ## Check the toolchain, fetch XGBoost, build the command line (release)
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install Rust from https://rustup.rs" >&2; exit 1; }
	$(CARGO) build --profile $(PROFILE) --workspace

# The prebuilt XGBoost library comes from the PyPI wheel `xgboost-cpu`; building
# its Rust bindings needs libclang (Debian: libclang-dev).
$(XGBOOST_LIB):
	@command -v llvm-config >/dev/null || ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || \
	  { echo "libclang not found: install it (Debian/Ubuntu: apt-get install libclang-dev)" >&2; exit 1; }
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

.PHONY: train
train: ## Fit, evaluate out of time and save the customer-spend models to $(MODELS)/
	OMP_WAIT_POLICY=PASSIVE $(BIN) train --data $(DATA) --models $(MODELS)

.PHONY: bench
bench: setup ## The pipeline benchmark (shared/spec/benchmark.md) on 1M generated lines, as JSON
	@test -d $(BENCH_DATA) || $(BIN) generate --lines 1M --seed 42 --out $(BENCH_DATA)
	OMP_WAIT_POLICY=PASSIVE $(BIN) bench --data $(BENCH_DATA) --json

.PHONY: bench-compare
bench-compare: setup ## The pipeline benchmark against the reference stack (pandas + scikit-learn + xgboost), with ratios
	@test -d $(BENCH_DATA) || $(BIN) generate --lines 1M --seed 42 --out $(BENCH_DATA)
	@test -x .venv-bench/bin/python || { python3 -m venv .venv-bench && .venv-bench/bin/pip install -q pandas pyarrow scikit-learn xgboost; }
	OMP_WAIT_POLICY=PASSIVE $(BIN) bench --data $(BENCH_DATA) --json > $(BENCH_DATA)/../ours.json
	OMP_WAIT_POLICY=PASSIVE .venv-bench/bin/python bench/reference.py $(BENCH_DATA) > $(BENCH_DATA)/../reference.json
	python3 bench/compare.py $(BENCH_DATA)/../ours.json $(BENCH_DATA)/../reference.json

.PHONY: serve
serve: setup ## Run the HTTP API (release) on the models in $(MODELS) and the data in $(DATA)
	$(or $(CARGO_TARGET_DIR),target)/$(PROFILE)/serve --models $(MODELS) --data $(DATA)

.PHONY: run
run: data clean-report kpis train ## The main job on the bundled defaults: generate, clean, report, KPIs, train

.PHONY: notebook-env
notebook-env: ## Install Jupyter (pip, into .venv) and the evcxr Rust kernel (cargo; skipped when present)
	@test -x $(VENV)/bin/jupyter || { python3 -m venv $(VENV) && $(VENV)/bin/pip install -q -r requirements-notebooks.txt; }
	@command -v evcxr_jupyter >/dev/null || cargo install evcxr_jupyter --locked --version $(EVCXR_VERSION)
	@rustup component add rust-src >/dev/null 2>&1 || echo "rust-src not installed: completions off, execution unaffected" >&2
	@JUPYTER_PATH=$(VENV)/share/jupyter evcxr_jupyter --install >/dev/null

.PHONY: reports
reports: notebook-env ## Execute every notebook on $(DATA) and export reports/*.html (offline)
	@test -d $(DATA) || $(MAKE) data
	ANALYTICS_DATA=$(DATA) scripts/run-notebooks.sh

.PHONY: test-notebooks
test-notebooks: notebook-env setup ## Execute the notebooks on small generated data and check the reports
	$(BIN) generate --lines 20k --seed 7 --out $(TEST_DATA)
	ANALYTICS_DATA=$(TEST_DATA) REPORTS_DIR=$(TEST_REPORTS) scripts/run-notebooks.sh
	REPORTS_DIR=$(TEST_REPORTS) $(VENV)/bin/python -m pytest -q tests/notebooks

.PHONY: fmt
fmt: ## Format the code
	$(CARGO) fmt --all

.PHONY: lint
lint: $(XGBOOST_LIB) ## cargo fmt --check and clippy with warnings as errors
	$(CARGO) fmt --all --check
	$(CARGO) clippy --profile $(PROFILE) --workspace --all-targets -- -D warnings

.PHONY: test
test: lint ## Lint, run every Rust test, then execute the notebooks and check the reports
	$(CARGO) test --profile $(PROFILE) --workspace
	$(MAKE) test-notebooks

.PHONY: clean
clean: ## Remove build outputs (not data/ nor models/)
	$(CARGO) clean
