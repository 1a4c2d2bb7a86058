#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need,
# then runs vet, the unit and root tests (with the race detector), the VM
# test and a smoke run of the built binary. `make test` and .ci/run call it.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n=== %s\n' "$*"; }

export PATH="$PATH:$(go env GOPATH)/bin"

# --- what the tests need -----------------------------------------------------
need_apt=()
command -v ip >/dev/null || need_apt+=(iproute2)
command -v iperf3 >/dev/null || need_apt+=(iperf3) # the eBPF collector's network-heavy workload
command -v promtool >/dev/null || need_apt+=(prometheus) # promtool check metrics and a real server scraping sculpt (cmd/sculpt serve_test.go)
command -v chromium >/dev/null || need_apt+=(chromium) # the dashboard in a real browser (cmd/sculpt dashboard_test.go)
command -v tmux >/dev/null || need_apt+=(tmux)         # sculpt top driven by send-keys and capture-pane (cmd/sculpt top_test.go)
if [[ ${#need_apt[@]} -gt 0 ]]; then
	log "installing ${need_apt[*]}"
	if [[ $(id -u) -ne 0 ]]; then
		echo "need root to apt-get install ${need_apt[*]}" >&2
		exit 1
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi
if ! command -v gotestsum >/dev/null; then
	log "installing gotestsum"
	GOFLAGS= go install gotest.tools/gotestsum@v1.13.0
fi
if [[ $(id -u) -ne 0 ]]; then
	echo "note: not root: root tests (real cgroups, perf, netns) will skip" >&2
fi

# --- static checks -----------------------------------------------------------
log "gofmt"
unformatted=$(gofmt -l cmd internal test 2>/dev/null || true)
if [[ -n $unformatted ]]; then
	echo "gofmt needed on:" >&2
	echo "$unformatted" >&2
	exit 1
fi
log "go vet"
go vet ./...

# --- VM tier (QEMU NUMA guest) ----------------------------------------------
if [[ ${SCULPT_SKIP_VM:-0} != 1 && -x test/vm/run.sh ]]; then
	log "VM test: 2-node NUMA guest under QEMU"
	test/vm/run.sh
else
	log "VM test skipped (SCULPT_SKIP_VM=1 or test/vm/run.sh missing)"
fi

# --- smoke run of the binary -------------------------------------------------
log "smoke: the built binary"
mkdir -p bin
go build -o bin/sculpt ./cmd/sculpt
bin/sculpt version
bin/sculpt topology >/dev/null
bin/sculpt dna --all --window 1s --json >/dev/null
bin/sculpt run --interval 1s --for 2500ms >/dev/null

# --- unit, root and CLI tests (last: its closing line is the summary) --------
log "go test -race"
# The short crash torture (TestCrashTorture, 10 kills) and soak (TestSoak, 2 min of
# 50 workloads) run here as root; `make torture` and `make soak` run the long ones.
# -p 1: root tests measure real processes; packages running side by side on 2 CPUs
# would starve each other's workloads. SCULPT_TEST_PACKAGE=1: TestPackageInstall builds
# the .deb (nfpm from the Go module proxy), installs it with dpkg, runs the unit's
# ExecStart and purges it (docs/install.md).
SCULPT_TEST_PACKAGE=${SCULPT_TEST_PACKAGE:-1} gotestsum --format pkgname-and-test-fails -- -race -count=1 -p 1 -timeout 30m ./...
