# tollgate — `make help` lists the targets.
#
# trivy v0.70 imports encoding/json/v2: every build needs GOEXPERIMENT=jsonv2.
export GOEXPERIMENT := jsonv2
# Pinned tools (Temporal CLI, MinIO, Prometheus, workflowcheck) are installed once by
# scripts/tools.sh into this cache; the binary looks there too. `tollgate scan` runs
# only the Temporal CLI (NATS is in-process, evidence is local): the demo installs
# that one, the tests all of them.
export TOLLGATE_TOOLS_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/tollgate/tools

GO        ?= go
# gore2regex: gitleaks matches secrets with RE2 (github.com/wasilibs/go-re2, in-process Wasm)
# instead of Go's regexp, as gitleaks' own release binaries do: the same findings, about ten
# times faster. The cost: every tollgate process compiles RE2's Wasm module when it starts
# (~0.4 s CPU, ~50 MB). Every go command that builds the scanners passes it.
GOTAGS    ?= gore2regex
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/tollgate/tollgate/internal/cli.Version=$(VERSION)
# Test binaries that link trivy and syft peak at ~3.4 GB in the linker: two at a time.
TEST_P    ?= 2
DEMO_DB   ?= .cache/demo-db
DEMO_APP  ?= examples/node-todo

.PHONY: help build tools tools-scan test test-short lint fmt demo db-demo loadtest drills clean notice notice-check release release-check

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/tollgate
	$(GO) build -tags '$(GOTAGS)' -ldflags '$(LDFLAGS)' -o bin/tollgate ./cmd/tollgate

tools: ## install every pinned tool the tests use (Temporal CLI and server, MinIO, Prometheus, nats-server, workflowcheck, the Kubernetes schemas' specs; PostgreSQL and Chromium from Debian) into the tool cache
	scripts/tools.sh all

tools-scan: ## install only what `tollgate scan` runs: the pinned Temporal CLI
	scripts/tools.sh temporal

# The tools install beside go vet's compile of tollgate, so that one build's
# links (one core) leave the other core to the other build; both are CPU-bound,
# so this gains little. go test skips its own
# vet (go vet has just run every analyzer) and links the test binaries
# without DWARF (-w), which halves the CPU of each link; panics and pprof
# still name functions and lines. TEST_LDFLAGS= keeps DWARF for a debugger.
TEST_LDFLAGS ?= -w

test: ## install the tools, vet, lint and run every test (what .ci/run runs)
	scripts/tools.sh all & tools=$$!; \
	$(GO) vet -tags '$(GOTAGS)' ./...; vetted=$$?; \
	wait $$tools && exit $$vetted
	$(MAKE) --no-print-directory lint-workflows
	$(GO) test -tags '$(GOTAGS)' -vet=off -ldflags '$(TEST_LDFLAGS)' -p $(TEST_P) -count=1 -timeout 30m ./...

test-short: ## the fast tests only (no servers, no scanners)
	$(GO) test -tags '$(GOTAGS)' -short ./...

lint: tools lint-workflows ## gofmt, go vet and workflowcheck
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^examples/')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags '$(GOTAGS)' ./...

lint-workflows:
	$$(scripts/tools.sh workflowcheck) ./workflows/...

fmt: ## gofmt the tree
	gofmt -w $$(git ls-files '*.go' | grep -v '^examples/')

db-demo: build ## build a vulnerability DB from the OSV records in testdata/osv
	bin/tollgate db import --osv testdata/osv --db $(DEMO_DB)

demo: tools-scan build db-demo ## install the Temporal CLI, build, and scan an example app on the embedded stack (DEMO_APP=...)
	bin/tollgate scan --full --db $(DEMO_DB) $(DEMO_APP); code=$$?; echo "exit code $$code (0 pass/warn, 1 block, 2 bad input, 3 internal error)"

clean: ## remove build outputs
	rm -rf bin .cache dist

notice: ## regenerate NOTICE (third-party licences of cmd/tollgate, by the pinned go-licenses; several minutes, offline)
	scripts/notice.sh

notice-check: ## fail when NOTICE is stale or a linked dependency's licence is not on the allow list (internal/notice/policy.go)
	$(GO) test -tags '$(GOTAGS)' -count=1 -run 'TestNotice' ./internal/notice

# The release: VERSION=x.y.z, TARGETS=linux/amd64 to build one, RELEASE_KEY the signing key.
DIST           ?= dist
RELEASE_PUBKEY ?= $(if $(RELEASE_KEY),$(RELEASE_KEY).pub,$(TOLLGATE_SIGNING_KEY).pub)
release: tools-scan ## build dist/: archives for linux and darwin (amd64, arm64), tollgate's SBOM and scan of itself, SHA256SUMS and its signature (VERSION=x.y.z RELEASE_KEY=...)
	VERSION='$(VERSION)' DIST='$(DIST)' scripts/release.sh

release-check: ## verify dist/'s SHA256SUMS signature (RELEASE_PUBKEY, default RELEASE_KEY.pub) and every checksum
	$(GO) run ./tools/dist check -key '$(RELEASE_PUBKEY)' '$(DIST)'

loadtest: tools build ## the load test: fleet vs the CLI pipeline and the scanners alone; report in loadtest/results (LOADTEST_FLAGS=...)
	$(GO) build -tags '$(GOTAGS)' -o bin/loadtest ./cmd/loadtest
	clis=$$(scripts/clis.sh all) && bin/loadtest -bin bin/tollgate -clis "$$clis" -out loadtest/results $(LOADTEST_FLAGS)

# The drills need the servers of both stacks, not Prometheus or the schemas.
DRILLS_FLAGS ?=
# The servers build (cold) beside tollgate and the load test: one go build
# alone leaves a core idle through its links and longest packages.
drills: ## the production-shaped stack (PostgreSQL, Temporal server, 3 NATS nodes, MinIO on 4 drives): dev vs production closed loop, then the failure drills; report in loadtest/results/drills (DRILLS_FLAGS=...)
	scripts/tools.sh temporal minio nats-server temporal-server debian & tools=$$!; \
	$(MAKE) build && $(GO) build -tags '$(GOTAGS)' -o bin/loadtest ./cmd/loadtest; built=$$?; \
	wait $$tools && exit $$built
	bin/loadtest -drills -bin bin/tollgate -apps 60 -clients 100 -warmup 20 $(DRILLS_FLAGS)
