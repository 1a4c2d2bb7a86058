# sculpt — see README.md
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: all build test unit test-vm lint bench clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/sculpt ./cmd/sculpt

# The whole suite on a fresh machine (installs what it needs): README's command.
test:
	scripts/test.sh

# Unit and root tests only.
unit:
	$(GO) test -count=1 ./...

# Tier 3: a 2-node NUMA guest under QEMU TCG.
test-vm:
	test/vm/run.sh

lint:
	@command -v golangci-lint >/dev/null || GOFLAGS= $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0
	PATH="$$PATH:$$($(GO) env GOPATH)/bin" golangci-lint run ./...

bench: build
	bin/sculpt bench profiler
	$(GO) test -run '^$$' -bench . -benchtime 2x ./internal/...

clean:
	rm -rf bin
