#!/bin/sh
# Builds the .deb of sculpt with nfpm (docs/install.md): a static binary, the systemd
# unit, the default config and rules. Writes dist/sculpt_VERSION_ARCH.deb and prints
# its path. NFPM overrides the nfpm command (default: go run at a pinned version, so
# sculpt's go.mod does not carry nfpm's dependencies).
set -eu
cd "$(dirname "$0")/.."
GO=${GO:-go}
NFPM=${NFPM:-"$GO run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2"}

# The binary's version is git describe's; the package's must start with a digit.
VERSION=$(git describe --always --dirty 2>/dev/null || echo dev)
if tag=$(git describe --tags --dirty 2>/dev/null); then
	DEBVERSION=$(echo "$tag" | sed 's/^v//; s/-\([0-9]*\)-g/+\1.g/; s/-dirty$/+dirty/')
else
	DEBVERSION="0.0~git$(echo "$VERSION" | tr -- - .)"
fi
ARCH=$($GO env GOARCH)
export VERSION="$DEBVERSION" ARCH

mkdir -p bin dist
CGO_ENABLED=0 $GO build -trimpath -ldflags "-X main.version=$(git describe --always --dirty 2>/dev/null || echo dev)" -o bin/sculpt-static ./cmd/sculpt
# The unit ships the rules the binary embeds: regenerate them so they cannot drift.
bin/sculpt-static rules default > deploy/systemd/rules.yaml.new
if ! cmp -s deploy/systemd/rules.yaml.new deploy/systemd/rules.yaml; then
	echo "deploy/systemd/rules.yaml differs from 'sculpt rules default': updated" >&2
	mv deploy/systemd/rules.yaml.new deploy/systemd/rules.yaml
else
	rm deploy/systemd/rules.yaml.new
fi
out="dist/sculpt_${DEBVERSION}_${ARCH}.deb"
rm -f "$out"
$NFPM package --config deploy/nfpm.yaml --packager deb --target "$out" >&2
echo "$out"
