#!/usr/bin/env bash
# Installs the pinned tools tollgate's embedded mode and tests need, once, into
# a cache that outlives checkouts: $TOLLGATE_TOOLS_DIR, else
# ${XDG_CACHE_HOME:-$HOME/.cache}/tollgate/tools. Each tool lives in a folder
# named by its version, so a bump installs beside the old one.
# Usage: scripts/tools.sh [temporal|workflowcheck|all]   (default: all)
set -euo pipefail

TEMPORAL_CLI_VERSION=v1.5.1        # keep in step with stack.TemporalCLIVersion
WORKFLOWCHECK_VERSION=v0.6.0

tools_dir=${TOLLGATE_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tollgate/tools}
mkdir -p "$tools_dir"

install() { # name module version binary
  local name=$1 module=$2 version=$3 bin=$4
  local dir="$tools_dir/$name-$version"
  if [ -x "$dir/$bin" ]; then
    echo "$dir/$bin"
    return
  fi
  echo "installing $module@$version into $dir" >&2
  local tmp
  tmp=$(mktemp -d "$tools_dir/.install-XXXXXX")
  # Tools are their own modules: build them outside this module's go.mod.
  (cd "$tmp" && GOFLAGS=-mod=mod GOBIN="$tmp/bin" go install "$module@$version") >&2
  mkdir -p "$dir"
  mv "$tmp/bin/$bin" "$dir/$bin"
  rm -rf "$tmp"
  echo "$dir/$bin"
}

what=${1:-all}
case $what in
  temporal|all) install temporal github.com/temporalio/cli/cmd/temporal "$TEMPORAL_CLI_VERSION" temporal ;;&
  workflowcheck|all) install workflowcheck go.temporal.io/sdk/contrib/tools/workflowcheck "$WORKFLOWCHECK_VERSION" workflowcheck ;;
  temporal|workflowcheck|all) ;;
  *) echo "usage: $0 [temporal|workflowcheck|all]" >&2; exit 2 ;;
esac
