#!/usr/bin/env bash
# Refresh the explorer page's vendored front-end files (uPlot) from ui/package-lock.json.
#
#   tools/build_ui.sh
#
# Runs `npm ci` in ui/ (the exact versions pinned in package.json and package-lock.json),
# then copies uPlot's minified script, stylesheet and licence into tsapi/static/ui/vendor/.
# The copies are committed, so pip installs and the container image need no Node. To move
# to another uPlot: edit the exact version in ui/package.json, run
# `npm install --package-lock-only --omit-lockfile-registry-resolved` in ui/, then this
# script, and commit what changed. Needs Node >= 18 and npm.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
UI=$ROOT/ui
VENDOR=$ROOT/tsapi/static/ui/vendor

command -v npm >/dev/null || { echo "error: npm not found (install Node.js >= 18)" >&2; exit 1; }

(cd "$UI" && npm ci --ignore-scripts --no-audit --no-fund)

uplot=$UI/node_modules/uplot
mkdir -p "$VENDOR"
install -m 0644 "$uplot/dist/uPlot.iife.min.js" "$uplot/dist/uPlot.min.css" "$VENDOR/"
install -m 0644 "$uplot/LICENSE" "$VENDOR/uPlot.LICENSE"
version=$(node -p "require('$uplot/package.json').version")
printf 'uPlot %s (from ui/package-lock.json, copied by tools/build_ui.sh)\n' "$version" \
    >"$VENDOR/VERSION"
echo "uPlot $version copied to ${VENDOR#"$ROOT"/}" >&2
