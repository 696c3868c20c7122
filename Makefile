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

.PHONY: lint
lint: ## gofmt, go vet and staticcheck
	@bad=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$bad" ]; then echo "gofmt needed:"; echo "$$bad"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

.PHONY: fuzz
fuzz: ## Fuzz the envelope decoder for FUZZTIME (default 1m)
	$(GO) test ./schema -run '^$$' -fuzz FuzzDecodeEvent -fuzztime $${FUZZTIME:-1m}

.PHONY: ci
ci: lint test ## What CI runs: lint, then the tests

.PHONY: clean
clean: ## Remove build output
	rm -rf bin
