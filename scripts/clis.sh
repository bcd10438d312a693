#!/usr/bin/env bash
# Builds the real gitleaks, syft and trivy CLIs from exactly the module versions
# tollgate pins in go.mod, so they run the same code as the libraries tollgate
# links. They go to $tools_dir/clis-<short sha256 of go.sum>/ (tools_dir as in
# scripts/tools.sh); a CLI already built there is skipped. Prints that folder.
#
# Each CLI is first built inside our module with -mod=readonly. When our go.sum
# lacks entries the CLI's extra packages need (syft's and trivy's do), it is
# built against a throwaway copy of go.mod/go.sum (-modfile, -mod=mod) instead.
# go.mod and go.sum are checked to be byte-identical afterwards.
# Each CLI is built with the build tags of its own release builds: gitleaks'
# .goreleaser.yml builds with -tags gore2regex (RE2 in WebAssembly), so the
# baseline's gitleaks is that one too; a cached binary built with other tags
# is rebuilt.
# Usage: scripts/clis.sh [gitleaks|syft|trivy|all]   (default: all)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export GOEXPERIMENT=jsonv2
# The caller's GOFLAGS could carry -mod=...; keep only what the repo expects.
export GOFLAGS=-buildvcs=false

tools_dir=${TOLLGATE_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tollgate/tools}
sum_hash=$(sha256sum go.sum | cut -c1-12)
out_dir="$tools_dir/clis-$sum_hash"
mkdir -p "$out_dir"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp go.mod "$work/go.mod.orig"
cp go.sum "$work/go.sum.orig"

# check_untouched fails (after restoring them) if go.mod/go.sum changed.
check_untouched() {
  local f changed=0
  for f in go.mod go.sum; do
    if ! cmp -s "$f" "$work/$f.orig"; then
      echo "clis.sh: $f changed during the build; restoring it" >&2
      cp "$work/$f.orig" "$f"
      changed=1
    fi
  done
  return $changed
}

# built_tags prints the -tags a Go binary was built with ("" for none).
built_tags() {
  go version -m "$1" | awk '$1 == "build" && $2 ~ /^-tags=/ { sub(/^-tags=/, "", $2); print $2 }'
}

build() { # name module package version-ldflag-var [build-tags]
  local name=$1 module=$2 pkg=$3 var=$4 tags=${5:-}
  local bin="$out_dir/$name"
  if [ -x "$bin" ] && [ "$(built_tags "$bin")" = "$tags" ]; then
    echo "$name: already built: $bin" >&2
    return
  fi
  local version
  version=$(go list -m -f '{{.Version}}' "$module")
  local ldflags="-s -w -X $var=$version"
  echo "$name: building $pkg from $module@$version" >&2

  local tmp="$out_dir/.$name.tmp"
  local route=in-module
  if ! go build -mod=readonly -trimpath -tags "$tags" -ldflags "$ldflags" -o "$tmp" "$pkg" 2>"$work/$name.err"; then
    check_untouched || true
    if ! grep -q 'missing go.sum entry' "$work/$name.err"; then
      cat "$work/$name.err" >&2
      return 1
    fi
    echo "$name: our go.sum lacks entries for the CLI's own packages;" \
      "building against a copy of go.mod/go.sum (-modfile)" >&2
    route=modfile
    local mf="$work/$name-mod"
    mkdir -p "$mf"
    cp "$work/go.mod.orig" "$mf/go.mod"
    cp "$work/go.sum.orig" "$mf/go.sum"
    go build -modfile="$mf/go.mod" -mod=mod -trimpath -tags "$tags" -ldflags "$ldflags" -o "$tmp" "$pkg"
    # The copy may gain requirements for the CLI-only modules, but every module
    # tollgate itself uses must have kept its version.
    go list -m -f '{{.Path}} {{.Version}}' all | sort >"$work/ours.list"
    go list -modfile="$mf/go.mod" -mod=mod -m -f '{{.Path}} {{.Version}}' all | sort >"$work/$name.list"
    local drift
    drift=$(comm -23 "$work/ours.list" "$work/$name.list")
    if [ -n "$drift" ]; then
      echo "$name: building the CLI changed these module versions (ours, not used):" >&2
      echo "$drift" >&2
      rm -f "$tmp"
      return 1
    fi
  fi
  check_untouched

  # The binary must embed the very version go.mod pins (listed as "mod" when
  # the main package is in that module, else as "dep").
  local embedded
  embedded=$(go version -m "$tmp" | awk -v m="$module" '($1 == "mod" || $1 == "dep") && $2 == m { print $3 }')
  if [ "$embedded" != "$version" ]; then
    echo "$name: binary embeds $module ${embedded:-<none>}, go.mod pins $version" >&2
    rm -f "$tmp"
    return 1
  fi
  mv "$tmp" "$bin"
  echo "$name: built $bin ($module@$version, $route)" >&2
}

what=${1:-all}
case $what in
  gitleaks|all) build gitleaks github.com/zricethezav/gitleaks/v8 github.com/zricethezav/gitleaks/v8 \
    github.com/zricethezav/gitleaks/v8/version.Version gore2regex ;;&
  syft|all) build syft github.com/anchore/syft github.com/anchore/syft/cmd/syft main.version ;;&
  trivy|all) build trivy github.com/aquasecurity/trivy github.com/aquasecurity/trivy/cmd/trivy \
    github.com/aquasecurity/trivy/pkg/version/app.ver ;;&
  gitleaks|syft|trivy|all) ;;
  *) echo "usage: $0 [gitleaks|syft|trivy|all]" >&2; exit 2 ;;
esac
echo "$out_dir"
