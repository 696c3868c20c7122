# eventflow — `make help` lists the targets. CI runs `make ci`.
.DEFAULT_GOAL := help
SHELL := /bin/bash

GO        ?= go
BIN       ?= bin/eventflow
TEST_ARGS ?=

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build the eventflow binary into bin/
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/eventflow

.PHONY: dev
dev: ## Run eventflow in one process, in memory (no Postgres, no Redis)
	$(GO) run ./cmd/eventflow dev

.PHONY: run
run: ## Run eventflow serve against the local Postgres and Redis
	$(GO) run ./cmd/eventflow serve

.PHONY: migrate
migrate: ## Apply the SQL migrations to DATABASE_URL
	$(GO) run ./cmd/eventflow migrate

.PHONY: test
test: ## Run every test with the race detector (needs local Postgres and Redis)
	$(GO) test -race -count=1 $(TEST_ARGS) ./...

.PHONY: test-short
test-short: ## The fast loop: skip the slow end-to-end tests
	$(GO) test -short -count=1 $(TEST_ARGS) ./...

.PHONY: test-chaos
test-chaos: ## Chaos suite: kill -9, SIGSTOP, SIGTERM, Redis and Postgres restarts under load (RELIABILITY.md)
	$(GO) test -tags chaos -race=false -count=1 -v -run TestChaos -timeout 30m ./app/

.PHONY: lint
lint: ## gofmt, go vet and staticcheck
	@bad=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$bad" ]; then echo "gofmt needed:"; echo "$$bad"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

.PHONY: fuzz
# The large hostile seeds (20 KB of nesting, 10,000-digit numbers) make new
# inputs slow to minimize: FUZZMINIMIZETIME (default 5s) instead of Go's 60s.
fuzz: ## Run each fuzzer of ./schema in turn for FUZZTIME (default 1m); seeds in schema/testdata/fuzz
	@set -e; for f in $$($(GO) test ./schema -list '^Fuzz' | grep '^Fuzz'); do \
		echo "== $$f"; \
		$(GO) test ./schema -run '^$$' -fuzz "^$$f\$$" -fuzztime $${FUZZTIME:-1m} -fuzzminimizetime $${FUZZMINIMIZETIME:-5s}; \
	done

.PHONY: bench
bench: ## Benchmark eventflow serve on the local Postgres and Redis (TRANSPORT, CONNECTIONS, DURATION, BATCH; see BENCHMARKS.md)
	scripts/bench.sh

.PHONY: ci
ci: lint test ## What CI runs: lint, then the tests

.PHONY: clean
clean: ## Remove build output
	rm -rf bin
