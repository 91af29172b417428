# omnimember — every routine task has a target; `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Every module of the workspace (events, shared, each function, scripts).
MODULES := $(shell go list -m -f '{{.Dir}}' 2>/dev/null)
FUNCTIONS := ingest match points-award tier-evaluate notify profile campaign
TEST_FLAGS ?= -count=1 -timeout 20m
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

.PHONY: run
run: ## run the whole chain on this machine (embedded NATS + store), replay the demo, serve on :8080 (prints the marketer console's URL)
	go run ./scripts/cmd/omnimember

.PHONY: test
test: ## every module's tests (Firestore ones start the emulator), deploy/'s manifest checks, each module alone
	@set -e; for m in $(MODULES); do echo "== test $${m#$(CURDIR)/}"; (cd $$m && go test $(TEST_FLAGS) ./...); done
	@echo "== test deploy"; cd deploy && GOWORK=off go test $(TEST_FLAGS) ./...
	@set -e; for m in $(MODULES); do (cd $$m && GOWORK=off go build ./...) || { echo "$${m#$(CURDIR)/} does not build alone: run make tidy"; exit 1; }; done

.PHONY: bench
bench: ## Go benchmarks, raw JetStream vs the whole chain, identity, loyalty, backfill and campaign figures, then each function's cold start
	cd events && go test -run '^$$' -bench . -benchmem ./...
	cd shared && go test -run '^$$' -bench . -benchmem ./...
	go run ./scripts/cmd/bench $(BENCH_FLAGS)
	go run ./scripts/cmd/coldstart $(COLDSTART_FLAGS)

# SOAK is how long make soak runs (MISSION: 30 minutes at half the measured peak).
SOAK ?= 30m

.PHONY: soak
soak: ## the soak: half the measured peak through the whole chain for SOAK (30m), heap and goroutines sampled; exit 1 on growth
	go run ./scripts/cmd/bench -soak $(SOAK)

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
lint: ## gofmt, go vet and staticcheck over every module; no tracked executable binary
	@bins=$$(git ls-files -z | xargs -0 -r sh -c 'for f; do [ -f "$$f" ] && [ "$$(head -c 4 "$$f" | od -An -c | tr -d " ")" = "177ELF" ] && echo "$$f"; done; true' sh); \
		test -z "$$bins" || { echo "$$bins"; echo "tracked executable binaries above: git rm them (build outputs never enter git)"; exit 1; }
	@test -z "$$(gofmt -l $(MODULES) deploy)" || { gofmt -l $(MODULES) deploy; echo "gofmt: files above need formatting"; exit 1; }
	@set -e; for m in $(MODULES); do (cd $$m && go vet ./... && go run $(STATICCHECK) ./...); done
	cd deploy && GOWORK=off go vet ./... && GOWORK=off go run $(STATICCHECK) ./...

.PHONY: tidy
tidy: ## go mod tidy each module on its own (as it builds when deployed alone)
	@set -e; for m in $(MODULES) $(CURDIR)/deploy; do (cd $$m && GOWORK=off go mod tidy); done

# deploy/ is its own module outside go.work: the Kubernetes API types stay out of the functions' builds.
OVERLAY ?= dev
REGISTRY ?=
TAG ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo dev)

# IMAGES are every image a cluster runs: the functions and deploy's setup job (nats-setup, from
# deploy/cmd/natssetup), which makes the streams and consumers before any function runs.
IMAGES := $(FUNCTIONS) nats-setup

.PHONY: image
image: ## one image without Docker, built and measured by deploy/cmd/image: make image FUNC=match [REGISTRY=registry.example.com/omnimember TAG=v1]
	@test -n "$(FUNC)" || { echo "usage: make image FUNC=match|...|nats-setup [REGISTRY=...] [TAG=...]"; exit 1; }
	@mkdir -p bin
	cd deploy && GOWORK=off go run ./cmd/image -root .. -func $(FUNC) -binary ../bin/$(FUNC) \
		$(if $(REGISTRY),-push $(REGISTRY)/$(FUNC):$(TAG),-out ../bin/$(FUNC).tar)

.PHONY: images
images: ## every image (the functions and nats-setup), with sizes; fails over 25 MiB unpacked (same REGISTRY/TAG as image)
	@set -e; for f in $(IMAGES); do $(MAKE) --no-print-directory image FUNC=$$f; done

.PHONY: render
render: ## print what Kubernetes gets: make render [OVERLAY=prod] [FUNC=match]
	@cd deploy && GOWORK=off go run ./cmd/render -overlay overlays/$(OVERLAY) $(if $(FUNC),-func $(FUNC))

.PHONY: deploy
deploy: ## apply one function alone: make deploy FUNC=match OVERLAY=prod IMAGE=registry.example.com/omnimember/match@sha256:...
	@test -n "$(FUNC)" || { echo "usage: make deploy FUNC=match [OVERLAY=dev|prod] [IMAGE=ref]"; exit 1; }
	$(if $(filter nats,$(FUNC)),kubectl -n omnimember delete job nats-setup --ignore-not-found)
	cd deploy && GOWORK=off go run ./cmd/render -overlay overlays/$(OVERLAY) -func $(FUNC) $(if $(IMAGE),-image $(IMAGE)) \
		| kubectl apply -f -

.PHONY: nats-secrets
nats-secrets: ## print the NATS Secrets with fresh keys (an nkey user per function and the operator, the JetStream key): make nats-secrets > outside-the-repo.yaml
	@cd deploy && GOWORK=off go run ./cmd/natskeys

.PHONY: deploy-platform
deploy-platform: ## apply the whole overlay (namespace, NATS and its setup job, policy, every function with its config and jobs)
	@# A Job cannot change in place: the previous setup job goes first (it only makes what exists already).
	kubectl -n omnimember delete job nats-setup --ignore-not-found
	kubectl apply -k deploy/overlays/$(OVERLAY)

.PHONY: deadletters
deadletters: ## list dead letters (NATS_URL, FUNC= to filter; NATS_NKEY/NATS_CA/NATS_INBOX_PREFIX=_INBOX_operator for production NATS)
	go run ./scripts/cmd/deadletter -function "$(FUNC)" list

.PHONY: replay
replay: ## replay dead letters to their subjects after a fix (NATS_URL, FUNC= to filter)
	go run ./scripts/cmd/deadletter -function "$(FUNC)" replay

.PHONY: renormalise
renormalise: ## re-run the current adapters over archived raw webhooks: make renormalise PLATFORM=pos SINCE=2026-11-01T00:00:00Z UNTIL=2026-11-02T00:00:00Z [REVISION=1] [DRY_RUN=1] (NATS_URL, OMNIMEMBER_WEBHOOK_SECRETS[_FILE])
	go run ./functions/ingest/cmd/renormalise -platform "$(PLATFORM)" -since "$(SINCE)" $(if $(UNTIL),-until "$(UNTIL)") -revision "$(or $(REVISION),0)" $(if $(DRY_RUN),-dry-run)

.PHONY: chaos
chaos: ## the fault harness: nats-server and every function as processes on Firestore (emulator), kill -9/pause/restart, checked against ground truth
	go run ./scripts/cmd/chaos $(CHAOS_FLAGS)

# The short form CI runs after make test: both stores, fixed workloads, faults for 20 s each.
CHAOS_SHORT = -people 100 -orders 600 -fault-for 20s -fault-every 3s

.PHONY: chaos-short
chaos-short: ## the fault harness's short form (CI): the embedded all-in-one and the Firestore processes, a few minutes
	go run ./scripts/cmd/chaos -store embedded $(CHAOS_SHORT) -seed 7
	go run ./scripts/cmd/chaos -store firestore $(CHAOS_SHORT) -seed 11

.PHONY: backfill
backfill: ## import a platform export into the running chain: make backfill FORMAT=tmall-orders FILE=orders.csv [SHOP=...]
	go run ./scripts/cmd/backfill -format "$(FORMAT)" -file "$(FILE)" $(if $(SHOP),-shop $(SHOP))

.PHONY: oneid
oneid: ## operator commands on identities: make oneid ARGS='split -member om_... -id jd_pin=x -reason "..."'
	go run ./scripts/cmd/oneid $(ARGS)

.PHONY: clean
clean: ## remove build output and the local data of `make run`
	rm -rf bin .data
