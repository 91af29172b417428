# omnimember — every routine task has a target; `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Every module of the workspace (events, shared, each function, scripts).
MODULES := $(shell go list -m -f '{{.Dir}}' 2>/dev/null)
FUNCTIONS := ingest match points-award tier-evaluate notify profile
TEST_FLAGS ?= -count=1 -timeout 20m
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

.PHONY: run
run: ## run the whole chain on this machine (embedded NATS + store), replay the demo, serve on :8080
	go run ./scripts/cmd/omnimember

.PHONY: test
test: ## run every module's tests (the Firestore ones start the emulator themselves)
	@set -e; for m in $(MODULES); do echo "== test $${m#$(CURDIR)/}"; (cd $$m && go test $(TEST_FLAGS) ./...); done

.PHONY: bench
bench: ## Go benchmarks, raw JetStream vs the whole chain (throughput and latency), then each function's cold start
	cd events && go test -run '^$$' -bench . -benchmem ./...
	cd shared && go test -run '^$$' -bench . -benchmem ./...
	go run ./scripts/cmd/bench $(BENCH_FLAGS)
	go run ./scripts/cmd/coldstart $(COLDSTART_FLAGS)

.PHONY: coldstart
coldstart: ## each function built alone and started as its own process: start → ready, → first event, idle RSS
	go run ./scripts/cmd/coldstart $(COLDSTART_FLAGS)

.PHONY: build
build: ## build each function alone (GOWORK=off, static) into bin/
	@mkdir -p bin
	@set -e; for f in $(FUNCTIONS); do \
		(cd functions/$$f && GOWORK=off CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o ../../bin/$$f ./cmd/$$f); \
		echo "bin/$$f $$(du -h bin/$$f | cut -f1)"; done

.PHONY: lint
lint: ## gofmt, go vet and staticcheck over every module
	@test -z "$$(gofmt -l $(MODULES))" || { gofmt -l $(MODULES); echo "gofmt: files above need formatting"; exit 1; }
	@set -e; for m in $(MODULES); do (cd $$m && go vet ./... && go run $(STATICCHECK) ./...); done

.PHONY: tidy
tidy: ## go mod tidy each module on its own (as it builds when deployed alone)
	@set -e; for m in $(MODULES); do (cd $$m && GOWORK=off go mod tidy); done

.PHONY: deadletters
deadletters: ## list dead letters (NATS_URL, FUNC= to filter)
	go run ./scripts/cmd/deadletter -function "$(FUNC)" list

.PHONY: replay
replay: ## replay dead letters to their subjects after a fix (NATS_URL, FUNC= to filter)
	go run ./scripts/cmd/deadletter -function "$(FUNC)" replay

.PHONY: oneid
oneid: ## operator commands on identities: make oneid ARGS='split -member om_... -id jd_pin=x -reason "..."'
	go run ./scripts/cmd/oneid $(ARGS)

.PHONY: clean
clean: ## remove build output and the local data of `make run`
	rm -rf bin .data
