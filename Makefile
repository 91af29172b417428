# omnimember — every routine task has a target; `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Every module of the workspace (events, shared, each function, scripts).
MODULES := $(shell go list -m -f '{{.Dir}}' 2>/dev/null)
TEST_FLAGS ?= -count=1 -timeout 20m

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

.PHONY: test
test: ## run every module's tests (the Firestore ones start the emulator themselves)
	@set -e; for m in $(MODULES); do echo "== test $${m#$(CURDIR)/}"; (cd $$m && go test $(TEST_FLAGS) ./...); done

.PHONY: lint
lint: ## gofmt, go vet and staticcheck over every module
	@test -z "$$(gofmt -l $(MODULES))" || { gofmt -l $(MODULES); echo "gofmt: files above need formatting"; exit 1; }
	@set -e; for m in $(MODULES); do (cd $$m && go vet ./... && go run honnef.co/go/tools/cmd/staticcheck@2025.1.1 ./...); done

.PHONY: tidy
tidy: ## go mod tidy each module on its own (as it builds when deployed alone)
	@set -e; for m in $(MODULES); do (cd $$m && GOWORK=off go mod tidy); done
