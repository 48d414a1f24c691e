# Kshaka — build, test and generate. `make help` lists the targets.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

REPO      := $(shell pwd)
BIN       := $(REPO)/bin
KUBE_BIN  := $(BIN)/k8s
GO        ?= go
GOTEST    ?= $(GO) test
# Extra flags for `go test`, e.g. `make test TESTFLAGS=-v`.
TESTFLAGS ?=
PKGS      ?= ./...
# The localkube module's packages `make test` runs (empty: none).
LOCALKUBE_PKGS ?= ./...

# The Go modules of the product, each with its own go.mod: the root one;
# localkube (kshaka-localkube, kept apart so that the root module does not
# depend on virtual-kubelet and the kubelet libraries); test/e2e (the
# end-to-end tests, which import both). `go build/vet/test ./...` in one
# module does not enter the others, so the targets below visit each.
# (hack/tools, hack/kube and hack/kube/etcd pin tools; they are not here.)
MODULES   := . localkube test/e2e

export PATH := $(BIN):$(PATH)
# The targets name each module themselves (MODULES); a developer's go.work
# must not change what they build and test.
export GOWORK := off
# envtest finds etcd and kube-apiserver here; hack/build-kube-binaries.sh builds them.
export KUBEBUILDER_ASSETS := $(KUBE_BIN)

.DEFAULT_GOAL := help

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Run

.PHONY: run
run: build ## Start a local three-acceptor cluster, show it working, keep it running (Ctrl-C stops it).
	$(BIN)/kshaka local --demo --dir $(REPO)/tmp/local

##@ Development

.PHONY: build
# Pure Go, as the images are built (Dockerfile): Pebble's cache and memtables
# are then Go memory, which the acceptor's memory limit governs, and what
# `make bench` measures is what ships (docs/memory.md).
build: ## Build kshaka, kubectl-kshaka, kshaka-acceptor, kshaka-operator and kshaka-localkube into bin/.
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -o $(BIN)/ ./cmd/...
	cd localkube && CGO_ENABLED=0 $(GO) build -o $(BIN)/ ./cmd/...

# Where install-plugin puts kubectl-kshaka: any directory on PATH.
PLUGIN_DIR ?= /usr/local/bin

.PHONY: install-plugin
install-plugin: ## Build kubectl-kshaka and copy it to PLUGIN_DIR (default /usr/local/bin), so `kubectl kshaka` works.
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -o $(BIN)/ ./cmd/kubectl-kshaka
	install -d $(PLUGIN_DIR)
	install -m 0755 $(BIN)/kubectl-kshaka $(PLUGIN_DIR)/kubectl-kshaka
	@echo "installed $(PLUGIN_DIR)/kubectl-kshaka; 'kubectl plugin list' shows it, 'kubectl kshaka --help' runs it"

.PHONY: fmt
fmt: ## Run gofmt on every module.
	gofmt -w $$(git ls-files '*.go')

# -tags e2e: the end-to-end tests are vetted and linted too, not only built
# by `make e2e`.
.PHONY: vet
vet: ## Run go vet on every module.
	@for m in $(MODULES); do echo "go vet ($$m)"; (cd $$m && $(GO) vet -tags e2e ./...); done

.PHONY: lint
lint: tools ## Run golangci-lint on every module.
	@for m in $(MODULES); do echo "golangci-lint ($$m)"; (cd $$m && $(BIN)/golangci-lint run --build-tags e2e ./...); done

.PHONY: tidy
tidy: ## Run go mod tidy in every module.
	@for m in $(MODULES); do echo "go mod tidy ($$m)"; (cd $$m && $(GO) mod tidy); done

.PHONY: generate
generate: tools ## Generate protobuf/gRPC code and deepcopy functions.
	protoc --plugin=protoc-gen-go=$(BIN)/protoc-gen-go --plugin=protoc-gen-go-grpc=$(BIN)/protoc-gen-go-grpc \
		--go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative \
		proto/kshaka/v1/kshaka.proto
	$(BIN)/controller-gen object:headerFile=hack/boilerplate.go.txt paths=./api/...

.PHONY: manifests
manifests: tools ## Generate the CRD and RBAC manifests under config/.
	$(BIN)/controller-gen rbac:roleName=manager-role crd paths=./api/... paths=./controllers/... output:crd:artifacts:config=config/crd/bases
	cp config/crd/bases/kshaka.io_*.yaml charts/kshaka-operator/files/crds/
	cp config/rbac/role.yaml charts/kshaka-operator/files/manager-role.yaml
	hack/gen-prometheus-rules.sh > config/prometheus/rules.yaml

.PHONY: verify-generated
verify-generated: generate manifests ## Fail if generated files are out of date.
	@if [ -n "$$(git status --porcelain -- proto api config charts)" ]; then \
		echo "generated files are out of date; run 'make generate manifests' and commit:"; \
		git status --porcelain -- proto api config charts; git --no-pager diff --stat -- proto api config charts; exit 1; fi

##@ Deployment

# The operator image the installer and the chart refer to.
IMG ?= ghcr.io/kshaka-io/kshaka-operator:v0.1.0

.PHONY: build-installer
build-installer: manifests ## Write dist/install.yaml (apply with kubectl apply --server-side).
	@mkdir -p dist
	cd config/manager && $(BIN)/kustomize edit set image controller=$(IMG)
	$(BIN)/kustomize build config/default > dist/install.yaml
	@echo "wrote dist/install.yaml"

.PHONY: helm-lint
helm-lint: ## Lint and render the Helm chart (builds the pinned helm if missing).
	hack/install-tools.sh helm
	$(BIN)/helm lint charts/kshaka-operator
	$(BIN)/helm template kshaka charts/kshaka-operator > /dev/null

##@ Test

# The alerting rules: the chart's file is the one source (config/prometheus/rules.yaml is generated from it).
PROMETHEUS_RULES := charts/kshaka-operator/files/prometheus-rules.yaml

.PHONY: promtool-check
promtool-check: ## Check the alerting rules and run their unit tests (config/prometheus/rules_test.yaml) with the pinned promtool.
	hack/install-tools.sh promtool
	$(BIN)/promtool check rules $(PROMETHEUS_RULES)
	$(BIN)/promtool test rules config/prometheus/rules_test.yaml

.PHONY: test
test: kube-binaries helm-lint promtool-check ## Run every test: unit, integration, simulation, envtest, localkube, chart lint, alert rules.
	$(GOTEST) -count=1 -timeout 30m $(TESTFLAGS) $(PKGS)
	$(if $(LOCALKUBE_PKGS),cd localkube && $(GOTEST) -count=1 -timeout 30m $(TESTFLAGS) $(LOCALKUBE_PKGS))

.PHONY: test-race
test-race: ## Run the data-path packages (and the kshaka CLI's) under the race detector.
	$(GOTEST) -race -count=1 -timeout 20m ./acceptor/... ./proposer/... ./internal/... ./cmd/kshaka/internal/...

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME (default 10s).
	@for t in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
		for f in $$(grep -h '^func Fuzz' $$t/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
			echo "fuzz $$t $$f"; (cd $$t && $(GOTEST) -run '^$$' -fuzz "^$$f$$" -fuzztime $${FUZZTIME:-10s} .); \
		done; done

.PHONY: soak
soak: ## Simulation over SEEDS seeds (default 100000), the explorer's large configurations, then CHAOS_DURATION (default 5m) of SIGKILL chaos.
	$(GOTEST) -count=1 -timeout 0 ./test/sim -run 'TestSim' -args -sim.seeds=$${SEEDS:-100000}
	$(GOTEST) -count=1 -timeout 0 ./test/sim -run 'TestExplore' -v -args -explore.soak
	$(GOTEST) -count=1 -timeout 0 ./test/chaos -run TestChaos -args -chaos.duration=$${CHAOS_DURATION:-5m}

.PHONY: ci
ci: verify-generated lint test ## What CI runs: generated files fresh, lint, all tests.

##@ Local Kubernetes

LOCALKUBE_DIR ?= $(REPO)/tmp/localkube

.PHONY: localkube-up localkube-down localkube-status
localkube-up: build kube-binaries ## Start a local control plane and a node that runs pods as processes; prints KUBECONFIG.
	@test -x $(BIN)/helm || hack/install-tools.sh helm
	$(BIN)/kshaka-localkube up --dir $(LOCALKUBE_DIR)

localkube-down: ## Stop the local control plane; nothing is left running (PURGE=1 also deletes its state).
	@if [ -x $(BIN)/kshaka-localkube ]; then $(BIN)/kshaka-localkube down --dir $(LOCALKUBE_DIR) $(if $(PURGE),--purge); fi

localkube-status: ## Show the local node and its pods.
	$(BIN)/kshaka-localkube status --dir $(LOCALKUBE_DIR)

##@ End to end

DEMO_DIR ?= $(REPO)/tmp/demo-kube

.PHONY: demo
demo: ## Local control plane + operator (Helm) + a 3-acceptor cluster; a client runs while it scales 3→5→3. Keeps running.
	DEMO_DIR=$(DEMO_DIR) hack/demo.sh

.PHONY: demo-down
demo-down: ## Stop what `make demo` started (PURGE=1 also deletes its state).
	$(MAKE) localkube-down LOCALKUBE_DIR=$(DEMO_DIR)

# Flags for the e2e run, e.g. `make e2e E2EFLAGS='-run TestHelm/.*DiskLoss'`.
E2EFLAGS ?=

.PHONY: e2e
e2e: build kube-binaries ## End-to-end tests on localkube: Helm and install.yaml, scaling, pod and disk loss, operator restarts (linearizability-checked).
	@test -x $(BIN)/helm || hack/install-tools.sh helm
	@test -f dist/install.yaml || $(MAKE) build-installer
	cd test/e2e && $(GOTEST) -tags e2e -count=1 -timeout 40m -v $(E2EFLAGS) ./...

##@ Benchmarks

.PHONY: bench
bench: build kube-binaries ## Measure Kshaka and etcd side by side (report in tmp/bench).
	$(BIN)/kshaka bench --etcd-bin $(KUBE_BIN)/etcd --report $(REPO)/tmp/bench $(BENCHFLAGS)

# The contention matrix of issue 14: N = 3 and 8 proposer processes on H = 1
# and 3 hot keys (docs/bench/contention-before.md).
.PHONY: bench-contention
bench-contention: build kube-binaries ## Proposer processes racing on hot keys, N = 3, 8 and H = 1, 3 (reports in tmp/bench-contention).
	for h in 1 3; do \
		$(BIN)/kshaka bench --targets kshaka,kshaka-tls,etcd --etcd-bin $(KUBE_BIN)/etcd \
			--runs contention:3,contention:8 --hot-keys $$h --duration 15s \
			--report $(REPO)/tmp/bench-contention/h$$h $(BENCHFLAGS) || exit 1; \
	done

##@ Tools

.PHONY: tools
tools: ## Build the pinned developer tools into bin/ (hack/tools).
	hack/install-tools.sh

.PHONY: kube-binaries
kube-binaries: ## Build etcd, kube-apiserver, kube-controller-manager, kubectl into bin/k8s (minutes the first time).
	hack/build-kube-binaries.sh

.PHONY: clean
clean: localkube-down ## Remove build output (keeps the cached Kubernetes binaries).
	rm -rf $(BIN)/kshaka $(BIN)/kshaka-acceptor $(BIN)/kshaka-operator $(BIN)/kshaka-localkube dist tmp
