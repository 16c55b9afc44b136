# hammer's tasks. Every Go target loops over the workspace's modules.
SHELL := /bin/bash
GO ?= go
MODULES := $(shell $(GO) list -m -f '{{.Dir}}')
PACKAGES := $(addsuffix /...,$(MODULES))
BIN := $(CURDIR)/bin
SQLC_VERSION := v1.31.1
SQLC := $(BIN)/sqlc
BUF := $(BIN)/buf
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X github.com/hammer-webhooks/hammer/platform/version.Version=$(VERSION) -X github.com/hammer-webhooks/hammer/platform/version.Commit=$(COMMIT)
TEST_FLAGS ?=
BENCH_FLAGS ?=
LOADGEN := $(BIN)/loadgen -hammer $(BIN)/hammer

.PHONY: all build run test test-short bench generate sqlc-check proto proto-check tools vet fmt tidy db-migrate run-server run-worker clean

all: build

build: ## the single hammer binary in ./bin
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/hammer ./cmd/hammer

run: build ## all-in-one dev mode: embedded NATS, own PostgreSQL unless HAMMER_DATABASE_URL is set
	$(BIN)/hammer dev

test: ## every module's tests with -race, on a throwaway PostgreSQL unless HAMMER_TEST_DATABASE_URL is set
	./scripts/with-postgres $(GO) test -race -count=1 -timeout 25m $(TEST_FLAGS) $(PACKAGES)

test-short: ## the tests without the end-to-end harness
	$(MAKE) test TEST_FLAGS=-short

# The first scenarios create their subscriptions as the README does (no
# optional field): the defaults a user gets are the ones measured first.
bench: build ## docs/BENCHMARKS.md's headline scenarios, each on a fresh hammer dev, one JSON summary each (BENCH_FLAGS="..." runs that one instead)
	$(GO) build -o $(BIN)/loadgen ./tests/loadgen
	@if [ -n "$(BENCH_FLAGS)" ]; then set -x; $(LOADGEN) $(BENCH_FLAGS); else set -ex; \
	  $(LOADGEN) -label readme-single -messages 10000 -publishers 16; \
	  $(LOADGEN) -label readme-single-4-subs -messages 10000 -subs 4 -publishers 16; \
	  $(LOADGEN) -label readme-batch -messages 20000 -publishers 16 -batch 100; \
	  $(LOADGEN) -label tuned-batch -messages 20000 -publishers 16 -batch 100 -sub '{"max_concurrent_requests": 64}'; \
	fi

vet:
	$(GO) vet $(PACKAGES)

fmt:
	gofmt -w $$(git ls-files '*.go')

tidy:
	for m in $(MODULES); do (cd $$m && $(GO) mod tidy) || exit 1; done

tools: $(SQLC) $(BUF)

$(SQLC):
	GOBIN=$(BIN) $(GO) install github.com/sqlc-dev/sqlc/cmd/sqlc@$(SQLC_VERSION)

# buf is a Go tool of tools/go.mod, a module kept out of go.work so that its
# many dependencies never raise the versions the services build with.
$(BUF): tools/go.mod tools/go.sum
	cd tools && GOWORK=off $(GO) build -o $(BUF) github.com/bufbuild/buf/cmd/buf

generate: $(SQLC) ## regenerate sql/dbsqlc from sql/queries
	cd sql && $(SQLC) generate

sqlc-check: $(SQLC) ## fails when the committed generated code is stale
	cd sql && $(SQLC) diff && $(SQLC) vet

proto: $(BUF) ## lint proto/ and regenerate its Go code (buf with the local plugins of proto/go.mod)
	cd proto && $(BUF) lint && $(BUF) generate

proto-check: $(BUF) ## fails when the committed generated gRPC code is stale
	./scripts/proto-check $(BUF)

db-migrate: build ## apply migrations to HAMMER_DATABASE_URL
	$(BIN)/hammer migrate up

run-server: build ## the API alone
	$(BIN)/hammer api

run-worker: build ## fanout, deliverer and recorder (run one process each in production)
	$(BIN)/hammer worker

clean:
	rm -rf $(BIN)
