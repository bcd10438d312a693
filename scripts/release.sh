#!/usr/bin/env bash
# Builds a tollgate release into dist/ (`make release VERSION=x.y.z`):
#   tollgate_VERSION_OS_ARCH.tar.gz   the binary, LICENSE, NOTICE, README.md, per target
#   tollgate_VERSION_sbom.cdx.json    tollgate's CycloneDX SBOM, made by tollgate scanning
#                                     the first target's archive (its binary's build info)
#   tollgate_VERSION_scan.json        that scan's report (JSON)
#   SHA256SUMS, SHA256SUMS.sig        the checksums of the files above, signed (tools/dist)
# A few lines over `go build` rather than goreleaser, whose build pulls a large
# module tree for what is here a loop of cross-compiles and a tar.
#
# cgo is on: the SAST engine's tree-sitter parsers are C (go-tree-sitter has
# no pure-Go build), so CGO_ENABLED=0 cannot build tollgate, and each target
# needs a C compiler for it. The host's target uses $CC (default cc);
# linux/arm64 and linux/amd64 from another host find Debian's cross gcc
# (gcc-aarch64-linux-gnu, gcc-x86-64-linux-gnu) on PATH; any target takes
# CC_<os>_<arch> (e.g. CC_darwin_arm64="zig cc -target aarch64-macos"), and the
# darwin targets need it or a Mac (TARGETS=darwin/arm64 there). Linux
# binaries are linked statically (netgo, osusergo, -extldflags -static), so
# they run on any glibc or musl distribution.
#
# Environment:
#   VERSION       the version, x.y.z (required; a leading v is dropped from file names)
#   TARGETS       GOOS/GOARCH list (default: linux/amd64 linux/arm64 darwin/amd64 darwin/arm64)
#   CC_<os>_<arch>  the C compiler for a target (see above)
#   RELEASE_KEY   PEM private key (Ed25519 or ECDSA P-256) that signs SHA256SUMS
#                 (default: $TOLLGATE_SIGNING_KEY); README "Releases" says how to make one
#   TOLLGATE_DB_DIR  the vulnerability DB the scan uses (tollgate's default otherwise)
#   DIST          output folder (default: dist), emptied first
# Needs GNU tar (reproducible archives: sorted, owner 0, mtime of the commit).
set -euo pipefail
cd "$(dirname "$0")/.."

version=${VERSION:?set VERSION=x.y.z}
version=${version#v}
if ! [[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]]; then
  echo "release: VERSION=$VERSION is not x.y.z[-pre]" >&2
  exit 2
fi
targets=${TARGETS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64}
key=${RELEASE_KEY:-${TOLLGATE_SIGNING_KEY:-}}
if [ -z "$key" ] || [ ! -f "$key" ]; then
  echo "release: set RELEASE_KEY to a PEM private key file (see README, Releases)" >&2
  exit 2
fi
dist=${DIST:-dist}
commit=$(git rev-parse HEAD)
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
  echo "release: warning: the work tree has uncommitted changes; Commit names $commit" >&2
fi
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
export GOEXPERIMENT=jsonv2 CGO_ENABLED=1
pkg=github.com/tollgate/tollgate/internal/cli
ldflags="-s -w -X $pkg.Version=$version -X $pkg.Commit=$commit"
hostos=$(go env GOHOSTOS) hostarch=$(go env GOHOSTARCH)

# c_compiler prints the C compiler for GOOS/GOARCH $1/$2, or fails.
c_compiler() {
  local var=CC_$1_$2
  if [ -n "${!var:-}" ]; then echo "${!var}"; return; fi
  if [ "$1/$2" = "$hostos/$hostarch" ]; then echo "${CC:-cc}"; return; fi
  case $1/$2 in
    linux/arm64) command -v aarch64-linux-gnu-gcc && return ;;
    linux/amd64) command -v x86_64-linux-gnu-gcc && return ;;
  esac
  return 1
}

# build GOOS GOARCH OUT: one tollgate binary.
build() {
  local cc tags=gore2regex ld=$ldflags
  cc=$(c_compiler "$1" "$2")
  if [ "$1" = linux ]; then
    tags+=",netgo,osusergo"
    ld+=" -linkmode=external -extldflags=-static"
  fi
  GOOS=$1 GOARCH=$2 CC=$cc go build -trimpath -tags "$tags" -ldflags "$ld" -o "$3" ./cmd/tollgate
}

# Every target's compiler is checked before the first (long) build.
for target in $targets; do
  if ! c_compiler "${target%/*}" "${target#*/}" >/dev/null; then
    echo "release: no C compiler for $target (cgo: tree-sitter): set CC_${target/\//_}, or leave $target out of TARGETS" >&2
    exit 2
  fi
done

rm -rf "$dist"
mkdir -p "$dist"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

archives=()
for target in $targets; do
  goos=${target%/*} goarch=${target#*/}
  name=tollgate_${version}_${goos}_${goarch}
  echo "release: building $name" >&2
  mkdir -p "$tmp/$name"
  build "$goos" "$goarch" "$tmp/$name/tollgate"
  cp LICENSE NOTICE README.md "$tmp/$name/"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
    -C "$tmp" -cf - "$name" | gzip -9n >"$dist/$name.tar.gz"
  archives+=("$name")
done

# The scan runs this machine's build: the one just made when a target is the
# host, else one built beside it with the same flags.
bin=$tmp/tollgate_${version}_${hostos}_$hostarch/tollgate
if [ ! -x "$bin" ]; then
  mkdir -p "$tmp/host"
  build "$hostos" "$hostarch" "$tmp/host/tollgate"
  bin=$tmp/host/tollgate
fi
temporal=$(scripts/tools.sh temporal)
# The folder the first archive was made from: the archive itself holds a
# binary over scan's per-file extraction limit (128 MiB).
scanned=$tmp/${archives[0]}
echo "release: scanning ${archives[0]} with tollgate $version" >&2
db=()
[ -z "${TOLLGATE_DB_DIR:-}" ] || db=(--db "$TOLLGATE_DB_DIR")
# A release the gate blocks is not made: scan's exit code 1 stops here.
"$bin" scan --embedded --quiet --app tollgate --commit "$commit" "${db[@]}" \
  --evidence "$tmp/evidence" --temporal-cli "$temporal" \
  --format json --output "$dist/tollgate_${version}_scan.json" \
  --report "cyclonedx=$dist/tollgate_${version}_sbom.cdx.json" \
  "$scanned"

go run ./tools/dist sign -key "$key" "$dist"
echo "release: $dist/ holds tollgate $version (${archives[*]}), its SBOM, its scan, SHA256SUMS and SHA256SUMS.sig" >&2
