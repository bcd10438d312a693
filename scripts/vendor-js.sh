#!/usr/bin/env bash
# vendor-js.sh installs the console's client library (htmx) from npm, exactly
# as console/web/package-lock.json pins it, copies its dist file into
# console/static/vendor/ and writes the file's sha256 beside it. The copied
# file is committed, so `go build` works from a clean clone without npm;
# console's TestVendoredHTMXMatchesChecksum checks the two agree.
#
#   scripts/vendor-js.sh          install with `npm ci` (the lock file as is)
#   scripts/vendor-js.sh --lock   first (re)write the lock file from package.json
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
web=$root/console/web
out=$root/console/static/vendor
cd "$web"
if [[ ${1:-} == --lock ]]; then
	npm install --package-lock-only --ignore-scripts --no-audit --no-fund
fi
npm ci --ignore-scripts --no-audit --no-fund
mkdir -p "$out"
cp node_modules/htmx.org/dist/htmx.min.js "$out/htmx.min.js"
(cd "$out" && sha256sum htmx.min.js >htmx.min.js.sha256)
version=$(node -p 'require("./node_modules/htmx.org/package.json").version')
echo "vendored htmx.org $version: $(cat "$out/htmx.min.js.sha256")"
