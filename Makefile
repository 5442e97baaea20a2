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

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: setup
setup: ## Check the toolchain and build the command line (release)
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install Rust from https://rustup.rs" >&2; exit 1; }
	$(CARGO) build --profile $(PROFILE) --workspace

.PHONY: build
build: setup ## Alias of setup

.PHONY: data
data: setup ## Generate the curated tables into $(DATA) (LINES=500k SEED=42 DEFECT_RATE=0.01)
	$(BIN) generate --lines $(LINES) --seed $(SEED) --defect-rate $(DEFECT_RATE) --out $(DATA)

.PHONY: clean-report
clean-report: ## Validate and clean $(DATA); print the cleaning report
	$(BIN) clean --data $(DATA)

.PHONY: run
run: data clean-report ## The main job on the bundled defaults: generate, clean, report

.PHONY: fmt
fmt: ## Format the code
	$(CARGO) fmt --all

.PHONY: lint
lint: ## cargo fmt --check and clippy with warnings as errors
	$(CARGO) fmt --all --check
	$(CARGO) clippy --profile $(PROFILE) --workspace --all-targets -- -D warnings

.PHONY: test
test: lint ## Lint, then run every test (release profile)
	$(CARGO) test --profile $(PROFILE) --workspace

.PHONY: clean
clean: ## Remove build outputs (not data/ nor models/)
	$(CARGO) clean
