#!/usr/bin/env bash
# Measures the SAST engine on real code no one here wrote (issue 13): exports
# each app of the truth list (sast/eval/truth.yaml unless -t) at its recorded
# commit into a temporary folder, scans it with the engine (go run
# ./sast/eval/cmd) and prints the table: recall on the vulnerable apps'
# documented lines, per app and per family, findings per KLOC on the control
# apps, every miss and every false positive. The table is also written, with
# its JSON, to the output folder.
#
# The apps' code is never committed: each comes from a bare git directory,
# found under MIRRORS as owner+name/repo (what the fetch tool leaves in
# /work/.mirror), owner+name, or name. With SAST_EVAL_CLONE=1 a missing one is
# cloned bare from GitHub into MIRRORS.
#
# Usage: scripts/sast-eval.sh [-t TRUTH] [-m MIRRORS] [-o OUTDIR] [-k] [-- cmd flags...]
#   -t TRUTH    the truth list (default: sast/eval/truth.yaml; the independent
#               check is sast/eval/independent.yaml)
#   -m MIRRORS  where the git directories are (default: $SAST_EVAL_MIRRORS or /work/.mirror)
#   -o OUTDIR   where eval.md and eval.json go (default: a new temporary folder)
#   -k          keep the exported trees (they are removed otherwise)
#   cmd flags   passed on: -only dvna,pygoat  -rules DIR
set -euo pipefail

mirrors=${SAST_EVAL_MIRRORS:-/work/.mirror}
truth=sast/eval/truth.yaml
out=""
keep=0
while getopts "t:m:o:kh" opt; do
  case $opt in
    t) truth=$OPTARG ;;
    m) mirrors=$OPTARG ;;
    o) out=$OPTARG ;;
    k) keep=1 ;;
    h) sed -n '2,21p' "$0"; exit 0 ;;
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ "${1:-}" = "--" ] && shift

# A relative -t names a file from the current folder, else from the repository.
case $truth in
  /*) ;;
  *) if [ -e "$truth" ]; then truth=$(cd "$(dirname "$truth")" && pwd)/$(basename "$truth"); fi ;;
esac
cd "$(dirname "$0")/.."
export GOEXPERIMENT=jsonv2

work=$(mktemp -d "${TMPDIR:-/tmp}/sast-eval-XXXXXX")
cleanup() { if [ "$keep" = 0 ]; then rm -rf "$work/apps"; fi; }
trap cleanup EXIT
out=${out:-$work}
mkdir -p "$out" "$work/apps"

gitdir_for() { # name repo
  local name=$1 repo=$2 d
  for d in "$mirrors/${repo/\//+}/repo" "$mirrors/${repo/\//+}" "$mirrors/$name" "$mirrors/$name.git"; do
    if [ -d "$d" ] && git --git-dir="$d" rev-parse --git-dir >/dev/null 2>&1; then
      echo "$d"
      return
    fi
  done
  if [ "${SAST_EVAL_CLONE:-0}" = 1 ]; then
    d="$mirrors/${repo/\//+}/repo"
    mkdir -p "$(dirname "$d")"
    git clone --quiet --bare "https://github.com/$repo.git" "$d" >&2
    echo "$d"
    return
  fi
  return 1
}

apps=$(go run ./sast/eval/cmd -truth "$truth" -list)
while read -r name repo commit; do
  if ! gitdir=$(gitdir_for "$name" "$repo"); then
    echo "sast-eval: no git directory for $repo under $mirrors (fetch github:$repo, or set SAST_EVAL_CLONE=1)" >&2
    exit 2
  fi
  if ! git --git-dir="$gitdir" cat-file -e "$commit^{commit}" 2>/dev/null; then
    echo "sast-eval: $gitdir has no commit $commit of $repo (fetch it again)" >&2
    exit 2
  fi
  mkdir -p "$work/apps/$name"
  git --git-dir="$gitdir" archive "$commit" | tar -x -C "$work/apps/$name"
  echo "sast-eval: exported $repo@${commit:0:12} to $work/apps/$name" >&2
done <<<"$apps"

go run ./sast/eval/cmd -truth "$truth" -apps "$work/apps" -json "$out/eval.json" "$@" >"$out/eval.md"
cat "$out/eval.md"
echo "sast-eval: table in $out/eval.md, JSON in $out/eval.json" >&2
