#!/usr/bin/env bash
# Parity check: runs the real gitleaks, syft and trivy CLIs (built by
# scripts/clis.sh from the versions go.mod pins) and `tollgate scan --full` on
# each app, and compares what they find:
#   secrets  (RuleID, file relative to the app, StartLine)   gitleaks vs tollgate
#   packages (name, version, purl)                           syft     vs tollgate
#   licenses (name, version, licence set)                    syft     vs tollgate
#   vulns    (ID, package, version, severity, fixed versions) trivy   vs tollgate
#   misconfig (check ID, file, start line, severity)        trivy config vs tollgate
#             (a check failing twice in one place counts twice)
# Both sides use a Trivy DB built from testdata/osv. Then it times, per app, the
# three CLIs run one after another against tollgate's in-process scanner time
# (timings.secrets + sbom + vulnerabilities), median of $COMPARE_REPS runs.
# Exits non-zero if any set differs.
#
# Usage: scripts/compare-clis.sh [APP_DIR...]   (default: every dir in examples/)
# Env:   TOLLGATE_BIN   tollgate binary to use (default: built into a temp dir)
#        COMPARE_REPS   timing repetitions (default 5; 0 skips timing)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export GOEXPERIMENT=jsonv2
reps=${COMPARE_REPS:-5}

apps=()
if [ $# -eq 0 ]; then
  for d in "$root"/examples/*/; do apps+=("${d%/}"); done
else
  for d in "$@"; do apps+=("$(cd "$d" && pwd)"); done
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

clis=$(scripts/clis.sh)
gitleaks=$clis/gitleaks syft=$clis/syft trivy=$clis/trivy

tollgate=${TOLLGATE_BIN:-}
if [ -z "$tollgate" ]; then
  echo "building tollgate into $work" >&2
  go build -tags gore2regex -o "$work/tollgate" ./cmd/tollgate
  tollgate=$work/tollgate
fi

# trivy wants its DB at <cache>/db/{trivy.db,metadata.json}; tollgate takes the db dir.
cache=$work/trivy-cache
"$tollgate" db import --osv testdata/osv --db "$cache/db" >&2

# The CLIs run from an empty directory with an empty HOME, so no trivy.yaml,
# .trivyignore, .syft.yaml, ~/.syft.yaml or .gitleaksignore of the caller's
# applies, and, where unshare allows it, in a network namespace with no network
# at all, which proves they run offline. GOPATH stays what tollgate sees: trivy
# (CLI and library alike) classifies the licences of a go.mod's modules and reads
# their dependency graph from $GOPATH/pkg/mod, which costs up to a second.
mkdir -p "$work/cwd" "$work/home"
isolate=(env HOME="$work/home" XDG_CONFIG_HOME="$work/home/.config" XDG_CONFIG_DIRS="$work/home/.xdg"
  XDG_CACHE_HOME="$work/home/.cache" GOPATH="${GOPATH:-$HOME/go}")
if unshare -n true 2>/dev/null; then
  isolate=(unshare -n "${isolate[@]}")
  echo "CLIs run without network (unshare -n)" >&2
else
  echo "warning: unshare -n unavailable: the CLIs run with network access" >&2
fi
# syft: nothing from the network, no update check, no `go list` in the scanned
# tree: the settings tollgate's library configuration uses (workers/scanners/sbom.go).
syft_env=(SYFT_CHECK_FOR_APP_UPDATE=false
  SYFT_GOLANG_USE_PACKAGES_LIB=false
  SYFT_GOLANG_SEARCH_REMOTE_LICENSES=false
  SYFT_GOLANG_SEARCH_LOCAL_MOD_CACHE_LICENSES=false
  SYFT_JAVASCRIPT_SEARCH_REMOTE_LICENSES=false
  SYFT_PYTHON_SEARCH_REMOTE_LICENSES=false
  SYFT_JAVA_USE_NETWORK=false
  SYFT_JAVA_USE_MAVEN_LOCAL_REPOSITORY=false)

run_gitleaks() { # app out
  (cd "$work/cwd" && "${isolate[@]}" "$gitleaks" dir "$1" --report-format json --report-path "$2" \
    --no-banner --exit-code 0 --log-level error)
}
run_syft() { # app out
  (cd "$work/cwd" && "${isolate[@]}" "${syft_env[@]}" "$syft" scan "dir:$1" -o "syft-json=$2" -q)
}
run_trivy() { # app out
  (cd "$work/cwd" && "${isolate[@]}" "$trivy" fs --cache-dir "$cache" --skip-db-update --offline-scan \
    --skip-version-check --disable-telemetry --scanners vuln --format json --output "$2" -q "$1")
}
# trivy config: the embedded checks (--skip-check-update with a cache that has
# no checks bundle) on the file types tollgate checks.
run_trivy_config() { # app out
  (cd "$work/cwd" && "${isolate[@]}" "$trivy" config --cache-dir "$work/checks-cache" --skip-check-update \
    --skip-version-check --disable-telemetry --misconfig-scanners dockerfile,helm,kubernetes,terraform \
    --format json --output "$2" -q "$1")
}
run_tollgate() { # app out; exit 1 (block) is a verdict, not a failure
  local rc=0
  "$tollgate" scan --full -q --db "$cache/db" --evidence "$work/evidence" -f json "$1" >"$2" || rc=$?
  if [ $rc -gt 1 ]; then
    echo "tollgate scan $1 exited $rc" >&2
    return $rc
  fi
}

# The sets, one tab-separated tuple a line, sorted and unique.
licenses_jq='[.[] | select(. != "")] | unique | join(",")'
fixed_jq='split(",") | map(gsub("^\\s+|\\s+$"; "")) | map(select(. != "")) | join(",")'
cli_secrets() { jq -r --arg p "$2/" '.[] | [.RuleID, (.File | ltrimstr($p)), (.StartLine | tostring)] | @tsv' "$1" | sort -u; }
tg_secrets() { jq -r '.secrets[] | [.rule, .file, (.line | tostring)] | @tsv' "$1" | sort -u; }
cli_packages() { jq -r '.artifacts[] | [.name, .version, .purl] | @tsv' "$1" | sort -u; }
tg_packages() { jq -r '.packages[] | [.name, .version, .purl] | @tsv' "$1" | sort -u; }
cli_licenses() {
  jq -r ".artifacts[] | [.name, .version, ([.licenses[]? | if (.spdxExpression // \"\") != \"\" then .spdxExpression else .value end] | $licenses_jq)] | @tsv" "$1" | sort -u
}
tg_licenses() { jq -r ".packages[] | [.name, .version, (.licenses | $licenses_jq)] | @tsv" "$1" | sort -u; }
cli_vulns() {
  jq -r ".Results[]? | .Vulnerabilities[]? | [.VulnerabilityID, .PkgName, .InstalledVersion, (.Severity // \"UNKNOWN\"), (.FixedVersion // \"\" | $fixed_jq)] | @tsv" "$1" | sort -u
}
tg_vulns() { jq -r '.vulnerabilities[] | [.id, .package, .version, .severity, (.fixed_versions | join(","))] | @tsv' "$1" | sort -u; }
cli_misconfigs() {
  jq -r '.Results[]? | .Target as $t | .Misconfigurations[]? | select(.Status == "FAIL") | [.ID, $t, (.CauseMetadata.StartLine // 0 | tostring), .Severity] | @tsv' "$1" | sort
}
tg_misconfigs() { jq -r '.misconfigurations[]? | [.id, .file, (.start_line // 0 | tostring), .severity] | @tsv' "$1" | sort; }

failed=0
results=()
compare() { # app what cli-name cli-set tollgate-set
  local app=$1 what=$2 cli=$3 a=$4 b=$5
  local n only_cli only_tg line
  n=$(wc -l <"$a")
  only_cli=$(comm -23 "$a" "$b")
  only_tg=$(comm -13 "$a" "$b")
  if [ -z "$only_cli" ] && [ -z "$only_tg" ]; then
    line=$(printf 'PASS  %-13s %-9s %-8s %3d identical' "$app" "$what" "$cli" "$n")
  else
    line=$(printf 'FAIL  %-13s %-9s %-8s %3d from %s, %d from tollgate' "$app" "$what" "$cli" "$n" "$cli" "$(wc -l <"$b")")
    failed=1
  fi
  echo "$line"
  results+=("$line")
  [ -z "$only_cli" ] || sed "s/^/      only $cli:      /" <<<"$only_cli"
  [ -z "$only_tg" ] || sed "s/^/      only tollgate: /" <<<"$only_tg"
}

echo "== parity (gitleaks, syft, trivy from $clis)"
for app in "${apps[@]}"; do
  name=$(basename "$app")
  o=$work/out/$name
  mkdir -p "$o"
  run_gitleaks "$app" "$o/gitleaks.json"
  run_syft "$app" "$o/syft.json"
  run_trivy "$app" "$o/trivy.json"
  run_trivy_config "$app" "$o/trivy-config.json"
  run_tollgate "$app" "$o/tollgate.json"

  cli_secrets "$o/gitleaks.json" "$app" >"$o/secrets.cli"; tg_secrets "$o/tollgate.json" >"$o/secrets.tg"
  cli_packages "$o/syft.json" >"$o/packages.cli"; tg_packages "$o/tollgate.json" >"$o/packages.tg"
  cli_licenses "$o/syft.json" >"$o/licenses.cli"; tg_licenses "$o/tollgate.json" >"$o/licenses.tg"
  cli_vulns "$o/trivy.json" >"$o/vulns.cli"; tg_vulns "$o/tollgate.json" >"$o/vulns.tg"
  compare "$name" secrets gitleaks "$o/secrets.cli" "$o/secrets.tg"
  compare "$name" packages syft "$o/packages.cli" "$o/packages.tg"
  compare "$name" licenses syft "$o/licenses.cli" "$o/licenses.tg"
  compare "$name" vulns trivy "$o/vulns.cli" "$o/vulns.tg"
  cli_misconfigs "$o/trivy-config.json" >"$o/misconfigs.cli"; tg_misconfigs "$o/tollgate.json" >"$o/misconfigs.tg"
  compare "$name" misconfig trivy "$o/misconfigs.cli" "$o/misconfigs.tg"
done

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", b - a }'; }

if [ "$reps" -gt 0 ]; then
  echo
  echo "== timings, seconds, median of $reps runs"
  echo "   CLIs: wall clock of each process, run one after another (startup included)"
  echo "   tollgate: in-process scanner time from the report (timings.secrets + sbom + vulnerabilities);"
  echo "             'wall' is the whole tollgate scan process (embedded Temporal/NATS start included)"
  printf '%-13s %9s %9s %9s %9s | %9s %9s %9s %9s %9s\n' app gitleaks syft trivy CLIs secrets sbom vulns scanners wall
  for app in "${apps[@]}"; do
    name=$(basename "$app")
    t=$work/time/$name
    mkdir -p "$t"
    for ((i = 0; i < reps; i++)); do
      t0=$EPOCHREALTIME
      run_gitleaks "$app" "$t/gitleaks.json"; t1=$EPOCHREALTIME
      run_syft "$app" "$t/syft.json"; t2=$EPOCHREALTIME
      run_trivy "$app" "$t/trivy.json"; t3=$EPOCHREALTIME
      elapsed "$t0" "$t1" >>"$t/gitleaks"
      elapsed "$t1" "$t2" >>"$t/syft"
      elapsed "$t2" "$t3" >>"$t/trivy"
      elapsed "$t0" "$t3" >>"$t/clis"
      t0=$EPOCHREALTIME
      run_tollgate "$app" "$t/tollgate.json"; t1=$EPOCHREALTIME
      elapsed "$t0" "$t1" >>"$t/wall"
      jq -r '.timings | .secrets, .sbom, .vulnerabilities, (.secrets + .sbom + .vulnerabilities)' "$t/tollgate.json" |
        paste - - - - >>"$t/tg"
    done
    printf '%-13s %9.3f %9.3f %9.3f %9.3f | %9.3f %9.3f %9.3f %9.3f %9.3f\n' "$name" \
      "$(median <"$t/gitleaks")" "$(median <"$t/syft")" "$(median <"$t/trivy")" "$(median <"$t/clis")" \
      "$(cut -f1 "$t/tg" | median)" "$(cut -f2 "$t/tg" | median)" "$(cut -f3 "$t/tg" | median)" \
      "$(cut -f4 "$t/tg" | median)" "$(median <"$t/wall")"
  done
fi

echo
if [ $failed -ne 0 ]; then
  echo "RESULT: FAIL: the CLIs and tollgate disagree (see the FAIL lines above)"
  exit 1
fi
echo "RESULT: PASS: the CLIs and tollgate found the same sets for every app"
