#!/usr/bin/env bash
# Writes NOTICE: the licences of every third-party package cmd/tollgate links
# on linux and darwin, found and classified in the module cache by the pinned
# go-licenses (scripts/tools.sh), assembled by tools/notice (one copy of each
# licence text; the overrides and allow list in internal/notice/policy.go).
# Offline: go-licenses only warns that it cannot reach the licence URLs,
# which NOTICE does not use. Takes several minutes (the classifier reads
# every licence file, once per platform). `make notice-check` checks it.
# Usage: scripts/notice.sh [OUTPUT]   (default: NOTICE)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-NOTICE}
# cgo on, as the release builds (the SAST engine's tree-sitter parsers are C):
# cgo links two more modules (DataDog/zstd, mattn/go-pointer).
export GOEXPERIMENT=jsonv2 CGO_ENABLED=1 GOFLAGS="-tags=gore2regex"
go_licenses=$(scripts/tools.sh go-licenses)
version=$(basename "$(dirname "$go_licenses")")   # go-licenses-vX.Y.Z
# The rows stay in .cache/notice (git-ignored) for a look after a failure.
tmp=.cache/notice
rm -rf "$tmp"
mkdir -p "$tmp"
# The module sets of amd64 and arm64 are the same on each OS (the test of
# internal/notice compares NOTICE with all four platforms): one run per OS.
for platform in linux/amd64 darwin/arm64; do
  echo "go-licenses report for $platform" >&2
  GOOS=${platform%/*} GOARCH=${platform#*/} "$go_licenses" report --template scripts/notice.tpl ./cmd/tollgate \
    >"$tmp/${platform/\//-}.tsv" 2>"$tmp/${platform/\//-}.log" || { cat "$tmp/${platform/\//-}.log" >&2; exit 1; }
done
go run ./tools/notice -o "$out" -modcache "$(go env GOMODCACHE)" -generator "${version/go-licenses-/go-licenses }" "$tmp"/*.tsv
echo "wrote $out" >&2
