#!/usr/bin/env bash
# Installs the pinned tools tollgate's embedded mode and tests need, once, into
# a cache that outlives checkouts: $TOLLGATE_TOOLS_DIR, else
# ${XDG_CACHE_HOME:-$HOME/.cache}/tollgate/tools. Each tool lives in a folder
# named by its version, so a bump installs beside the old one.
# Usage: scripts/tools.sh [temporal|workflowcheck|minio|prometheus|k8s-schemas|nats-server|temporal-server|debian|chromium|go-licenses|all]...   (default: all)
# temporal-server (the production-shaped stack's Temporal server and its SQL
# tool) builds for minutes cold: the tests' drill (loadtest.TestDrills) and
# `make drills` need it.
set -euo pipefail

TEMPORAL_CLI_VERSION=v1.5.1        # keep in step with stack.TemporalCLIVersion
# The Temporal server the pinned CLI embeds, built as its own binaries for
# the production-shaped stack (PostgreSQL persistence): the server and its
# temporal-sql-tool, which carries the schema the server expects.
TEMPORAL_SERVER_VERSION=v1.29.1    # keep in step with stack.TemporalServerVersion
WORKFLOWCHECK_VERSION=v0.6.0
# go-licenses finds and classifies the licence of every package cmd/tollgate
# links, from the module cache (offline: only the licence URLs it would add
# need the network, and NOTICE does not use them): `make notice` writes
# NOTICE from its report. v1.6.0 is its newest release that builds here: the
# proxy serves v2 only as v2.0.0-alpha.1, whose pinned golang.org/x/tools
# v0.12.0 no longer compiles with this Go (tokeninternal), and which
# `go install` refuses since the proxy lists no v2 versions.
GO_LICENSES_VERSION=v1.6.0
# PostgreSQL (Temporal's database on the production-shaped stack) comes from
# Debian's package, pinned to Debian 12's major version; stack.FindPostgres
# finds /usr/lib/postgresql/*/bin. iproute2 makes the network namespaces of
# the NATS partition drill.
POSTGRES_MAJOR=15
# MinIO is AGPL-3.0: tollgate only ever runs it as a separate process, never links it.
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c  # keep in step with stack.MinIOVersion
# Prometheus (Apache-2.0) for the health puller's tests. Its 3.x releases are
# tagged v0.3xx.y as Go modules: v0.315.0 is Prometheus 3.15.0. Built with
# upstream's remove_all_sd tag (static, file and http discovery only: a third
# of the build) and without builtinassets (no web UI; tests use the HTTP API).
PROMETHEUS_VERSION=v0.315.0  # keep in step with stack.PrometheusVersion
# The Kubernetes OpenAPI spec and KEDA's CRDs that deploy/'s manifests are
# validated against (kubeconform, in go test ./deploy). kubeconform's own
# schemas come from GitHub; these come through the Go module proxy, pinned.
# nats-server for the production-shaped stack's three-node JetStream cluster
# (stack.StartNATSCluster runs one process per node). The version tollgate
# links (go.mod's github.com/nats-io/nats-server/v2): stack.FindNATSServer
# looks for nats-server-v<server.VERSION>/nats-server in this cache.
NATS_SERVER_VERSION=v2.15.2  # keep in step with go.mod
K8S_VERSION=v1.34.2   # keep in step with deploy.KubernetesVersion
KEDA_VERSION=v2.18.1  # keep in step with deploy.KEDAVersion

# Tools link without the symbol table and DWARF (as most of their own
# release builds do): nobody debugs them here, and a link without DWARF
# takes about half the CPU, which counts on a cold two-core CI machine.
tool_ldflags='-s -w'

tools_dir=${TOLLGATE_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tollgate/tools}
mkdir -p "$tools_dir"

install() { # name module version binary [installed name]
  local name=$1 module=$2 version=$3 bin=$4 as=${5:-$4}
  local dir="$tools_dir/$name-$version"
  if [ -x "$dir/$as" ]; then
    echo "$dir/$as"
    return
  fi
  echo "installing $module@$version into $dir" >&2
  local tmp
  tmp=$(mktemp -d "$tools_dir/.install-XXXXXX")
  # Tools are their own modules: build them outside this module's go.mod.
  # Tools build without tollgate's GOEXPERIMENT, as their own releases do.
  (cd "$tmp" && GOEXPERIMENT= GOFLAGS=-mod=mod GOBIN="$tmp/bin" go install -ldflags="$tool_ldflags" "$module@$version") >&2
  mkdir -p "$dir"
  mv "$tmp/bin/$bin" "$dir/$as"
  rm -rf "$tmp"
  echo "$dir/$as"
}

install_tree() { # name module version package binary [build tags]
  # For modules whose go.mod has replace or exclude directives, which
  # `go install module@version` refuses: build the module's own tree as the
  # main module, so its directives and go.sum apply as in its own releases.
  # GOWORK=off: a module zip can carry a go.work naming modules it lacks.
  local name=$1 module=$2 version=$3 pkg=$4 bin=$5 tags=${6:-}
  local dir="$tools_dir/$name-$version"
  if [ -x "$dir/$bin" ]; then
    echo "$dir/$bin"
    return
  fi
  echo "building $module@$version ($pkg, tags \"$tags\") into $dir" >&2
  local tmp src
  tmp=$(mktemp -d "$tools_dir/.install-XXXXXX")
  src=$(cd "$tmp" && GOEXPERIMENT= GOFLAGS= go mod download -json "$module@$version" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  if [ -z "$src" ]; then
    echo "download $module@$version: no source directory" >&2
    return 1
  fi
  cp -R "$src" "$tmp/src"
  chmod -R u+w "$tmp/src"
  (cd "$tmp/src" && GOEXPERIMENT= GOFLAGS=-buildvcs=false GOWORK=off go build -trimpath -tags "$tags" -ldflags="$tool_ldflags" -o "$tmp/bin/$bin" "./$pkg") >&2
  mkdir -p "$dir"
  mv "$tmp/bin/$bin" "$dir/$bin"
  rm -rf "$tmp"
  echo "$dir/$bin"
}

install_temporal_server() { # the Temporal server and its SQL tool
  # Built as packages of the pinned CLI's build list, not with `go install`
  # under the server's own go.mod: the CLI requires this very server
  # version, but the server's go.mod pins older x/net, x/crypto, otel, ...,
  # which every server package depends on, so a separate build compiled
  # all of it again (minutes cold on two cores). In the CLI's build list
  # every package the CLI compiled is a cache hit, and both binaries link in
  # one go build. The server's version is checked, not assumed.
  local sdir="$tools_dir/temporal-server-$TEMPORAL_SERVER_VERSION" qdir="$tools_dir/temporal-sql-tool-$TEMPORAL_SERVER_VERSION"
  if [ -x "$sdir/temporal-server" ] && [ -x "$qdir/temporal-sql-tool" ]; then
    echo "$sdir/temporal-server"
    echo "$qdir/temporal-sql-tool"
    return
  fi
  echo "building go.temporal.io/server@$TEMPORAL_SERVER_VERSION (server, sql tool) in the build list of github.com/temporalio/cli@$TEMPORAL_CLI_VERSION" >&2
  local tmp got
  tmp=$(mktemp -d "$tools_dir/.install-XXXXXX")
  (
    cd "$tmp"
    export GOEXPERIMENT= GOFLAGS=-mod=mod GOWORK=off
    go mod init tollgate-tools/temporal-server >/dev/null 2>&1
    go get "github.com/temporalio/cli@$TEMPORAL_CLI_VERSION" "go.temporal.io/server@$TEMPORAL_SERVER_VERSION"
    got=$(go list -m -f '{{.Version}}' go.temporal.io/server)
    if [ "$got" != "$TEMPORAL_SERVER_VERSION" ]; then
      echo "the CLI $TEMPORAL_CLI_VERSION's build list has go.temporal.io/server $got, not $TEMPORAL_SERVER_VERSION: bump them together" >&2
      exit 1
    fi
    go build -ldflags="$tool_ldflags" -o "$tmp/bin/" go.temporal.io/server/cmd/server go.temporal.io/server/cmd/tools/sql
  ) >&2
  mkdir -p "$sdir" "$qdir"
  mv "$tmp/bin/server" "$sdir/temporal-server"
  mv "$tmp/bin/sql" "$qdir/temporal-sql-tool"
  rm -rf "$tmp"
  echo "$sdir/temporal-server"
  echo "$qdir/temporal-sql-tool"
}

fetch_specs() { # the OpenAPI spec and CRDs, copied out of their module zips
  local dir="$tools_dir/k8s-schemas-$K8S_VERSION-keda-$KEDA_VERSION"
  if [ -f "$dir/swagger.json" ] && [ -f "$dir/keda.sh_scaledobjects.yaml" ]; then
    echo "$dir"
    return
  fi
  echo "fetching the Kubernetes $K8S_VERSION OpenAPI spec and KEDA $KEDA_VERSION CRDs into $dir" >&2
  local tmp k8s keda
  tmp=$(mktemp -d "$tools_dir/.install-XXXXXX")
  k8s=$(cd "$tmp" && GOEXPERIMENT= GOFLAGS= go mod download -json "k8s.io/kubernetes@$K8S_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  keda=$(cd "$tmp" && GOEXPERIMENT= GOFLAGS= go mod download -json "github.com/kedacore/keda/v2@$KEDA_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  if [ -z "$k8s" ] || [ -z "$keda" ]; then
    echo "download the Kubernetes spec or the KEDA CRDs: no source directory" >&2
    return 1
  fi
  mkdir -p "$tmp/out"
  cp "$k8s/api/openapi-spec/swagger.json" "$keda/config/crd/bases/keda.sh_scaledobjects.yaml" "$tmp/out/"
  chmod u+w "$tmp/out"/*
  rm -rf "$dir"
  mv "$tmp/out" "$dir"
  rm -rf "$tmp"
  echo "$dir"
}

# debian_packages installs Debian packages the tests run (as root, with
# apt-get), unless what they provide is already there.
debian_packages() {
  local need=()
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || need+=("postgresql-$POSTGRES_MAJOR")
  command -v ip >/dev/null || need+=(iproute2)
  [ ${#need[@]} -gt 0 ] || return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "tools.sh: install ${need[*]} (Debian packages: PostgreSQL and ip for the production-shaped stack's tests); without them those tests skip" >&2
    return 0
  fi
  echo "installing ${need[*]} with apt-get" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}") >&2
}

# chromium installs Debian's chromium for the console's browser tests
# (internal/cli, through internal/browsertest), unless $TOLLGATE_CHROMIUM or
# a chromium on PATH is there. Without it those tests skip, or fail under CI.
chromium_browser() {
  if [ -n "${TOLLGATE_CHROMIUM:-}" ] && [ -x "$TOLLGATE_CHROMIUM" ]; then
    echo "$TOLLGATE_CHROMIUM"
    return
  fi
  if ! command -v chromium >/dev/null; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
      echo "tools.sh: install chromium (Debian's package) for the console's browser tests; without it they skip" >&2
      return 0
    fi
    echo "installing chromium with apt-get" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium) >&2
  fi
  command -v chromium
}

[ $# -gt 0 ] || set -- all
for what in "$@"; do
case $what in
  temporal|all) install temporal github.com/temporalio/cli/cmd/temporal "$TEMPORAL_CLI_VERSION" temporal ;;&
  workflowcheck|all) install workflowcheck go.temporal.io/sdk/contrib/tools/workflowcheck "$WORKFLOWCHECK_VERSION" workflowcheck ;;&
  # Not in all: only `make notice` runs it, no test.
  go-licenses) install go-licenses github.com/google/go-licenses "$GO_LICENSES_VERSION" go-licenses ;;&
  minio|all) install minio github.com/minio/minio "$MINIO_VERSION" minio ;;&
  # Prometheus's go.mod has a replace directive: `go install` refuses it.
  prometheus|all) install_tree prometheus github.com/prometheus/prometheus "$PROMETHEUS_VERSION" cmd/prometheus prometheus remove_all_sd ;;&
  k8s-schemas|all) fetch_specs ;;&
  debian|all) debian_packages ;;&
  chromium|all) chromium_browser ;;&
  nats-server|all) install nats-server github.com/nats-io/nats-server/v2 "$NATS_SERVER_VERSION" nats-server ;;&
  # Installed as temporal-server and temporal-sql-tool, each in its own
  # versioned folder. After the CLI: it reuses the CLI's compiled packages.
  temporal-server|all) install_temporal_server ;;&
  temporal|workflowcheck|minio|prometheus|k8s-schemas|nats-server|temporal-server|debian|chromium|go-licenses|all) ;;
  *) echo "usage: $0 [temporal|workflowcheck|minio|prometheus|k8s-schemas|nats-server|temporal-server|debian|chromium|go-licenses|all]..." >&2; exit 2 ;;
esac
done
