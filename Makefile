# sculpt — see README.md
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: all build test unit test-vm lint bench clean model zoo fuzz torture soak package

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/sculpt ./cmd/sculpt

# The whole suite on a fresh machine (installs what it needs): README's command.
test:
	scripts/test.sh

# Unit and root tests only.
unit:
	$(GO) test -count=1 ./...

# Every fuzz target for FUZZTIME each (docs/reliability.md); a crash leaves its
# input under the package's testdata/fuzz/ and fails.
FUZZTIME ?= 30s
fuzz:
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

# Crash torture (root): sculpt SIGKILLed TORTURE_KILLS times across every action
# family, the machine compared with its state before sculpt ran after each
# recovery (docs/reliability.md). `make test` runs 10 kills.
TORTURE_KILLS ?= 200
torture:
	TORTURE_KILLS=$(TORTURE_KILLS) $(GO) test -count=1 -p 1 -timeout 90m -v -run 'TestCrashTorture|TestTortureSIGSTOP|TestJournalUnwritableRefuses' ./cmd/sculpt

# Soak (root): SOAK_WORKLOADS churning workloads under apply mode for SOAK_MINUTES,
# sculpt's RSS, fds, goroutines and CPU per tick sampled each minute with their
# slope (docs/reliability.md). `make test` runs 2 minutes of 50.
SOAK_MINUTES ?= 30
SOAK_WORKLOADS ?= 1000
soak:
	SOAK_MINUTES=$(SOAK_MINUTES) SOAK_WORKLOADS=$(SOAK_WORKLOADS) $(GO) test -count=1 -p 1 -timeout $$(( $(SOAK_MINUTES) + 30 ))m -v -run 'TestSoak$$' ./cmd/sculpt

# Tier 3: a 2-node NUMA guest under QEMU TCG.
test-vm:
	test/vm/run.sh

lint:
	@command -v golangci-lint >/dev/null || GOFLAGS= $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0
	PATH="$$PATH:$$($(GO) env GOPATH)/bin" golangci-lint run ./...

bench: build
	bin/sculpt bench profiler
	bin/sculpt bench dna $(addprefix --train ,$(MODEL_TRACES)) --test 'testdata/traces/heldout/*.trace.gz' --test 'testdata/traces/unseen/*.trace.gz'
	$(GO) test -run '^$$' -bench . -benchtime 2x ./internal/...

# The embedded DNA model, trained (seed 1, reproducible byte for byte) on the zoo's 1 s
# training runs; `sculpt bench dna` scores it on held-out runs and unseen kinds (docs/zoo.md).
MODEL_TRACES = $(filter-out %-500ms.trace.gz,$(wildcard testdata/traces/train/*.trace.gz))
model:
	$(GO) run ./cmd/sculpt train $(addprefix --in ,$(MODEL_TRACES)) --out internal/dna/models/default.model --seed 1

# Re-record the zoo (root, about 30 min; clear testdata/traces/{train,heldout,unseen,phase}
# and recordings.tsv first).
zoo:
	scripts/zoo/install.sh
	scripts/zoo/record-all.sh testdata/traces
	ZOO_RUNS=C ZOO_KINDS="$$(scripts/zoo/run.sh list | awk '{print $$1}' | grep -vE '^(postgres|iperf3|go-build|phase-)')" scripts/zoo/record-all.sh testdata/traces
	scripts/zoo/readme.sh testdata/traces

# The .deb (nfpm): static binary, systemd unit, default config and rules (docs/install.md).
package:
	GO=$(GO) scripts/package.sh

clean:
	rm -rf bin dist
