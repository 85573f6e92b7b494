GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
FUZZTIME ?= 20s
# How long the fuzzer may minimize a new input, which can outlast
# -fuzztime and end the run with "context deadline exceeded".
FUZZMINIMIZE ?= 2s

.PHONY: help build test test-short fuzz bench generate verify-generate fmt verify-fmt vet

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

build: ## build bin/wharf
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/wharf ./cmd/wharf

test: verify-fmt vet verify-generate ## the whole suite: checks, unit, integration and CLI tests with the race detector, short fuzzing
	$(GO) test -race -count=1 -timeout 20m ./...
	$(MAKE) fuzz FUZZTIME=10s

test-short: ## unit and integration tests without the race detector
	$(GO) test -count=1 ./...

fuzz: ## run every fuzz target for FUZZTIME each
	$(GO) test -run='^$$' -fuzz='^FuzzVerify$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZE) ./internal/awsproto/
	$(GO) test -run='^$$' -fuzz='^FuzzParseAuthorization$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZE) ./internal/awsproto/
	$(GO) test -run='^$$' -fuzz='^FuzzDecode$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZE) ./internal/awsproto/
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZE) ./internal/scheduler/cql/
	$(GO) test -run='^$$' -fuzz='^FuzzRequests$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZE) ./internal/cloudmap/
	$(GO) test -run='^$$' -fuzz='^FuzzServeDNS$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZE) ./internal/dns/
	$(GO) test -run='^$$' -fuzz='^FuzzIssue$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZE) ./internal/pki/
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZE) ./internal/telemetry/
	$(GO) test -run='^$$' -fuzz='^FuzzParseRequest$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZE) ./internal/proxy/
	$(GO) test -run='^$$' -fuzz='^FuzzParseResponse$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZE) ./internal/proxy/
	$(GO) test -run='^$$' -fuzz='^FuzzCopyChunked$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZE) ./internal/proxy/

bench: ## API throughput and latency against moto_server
	$(GO) run ./bench/ecsapi

generate: ## regenerate the API packages from the installed botocore models, then the stored records from their pinned schema
	$(GO) generate ./internal/api/... ./internal/ecs/state/...

verify-generate: ## check the stored records match their pinned schema, and the API packages the installed botocore (skipped when its version differs)
	@./hack/verify-generated.sh

fmt: ## format the code
	gofmt -w $$(git ls-files '*.go')

verify-fmt: ## check formatting
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet: ## go vet
	$(GO) vet ./...
