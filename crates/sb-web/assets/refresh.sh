#!/usr/bin/env bash
# Refreshes the vendored front-end files from npm (the versions pinned in package-lock.json).
# The files in vendor/ are committed and embedded in the binary with include_bytes!, so a
# cargo build needs neither npm nor the network; run this after changing package.json.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --ignore-scripts
mkdir -p vendor
cp node_modules/htmx.org/dist/htmx.min.js vendor/
cp node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css vendor/
cp node_modules/rapidoc/dist/rapidoc-min.js vendor/
cp node_modules/htmx.org/LICENSE vendor/htmx.LICENSE
cp node_modules/uplot/LICENSE vendor/uPlot.LICENSE
cp node_modules/rapidoc/LICENSE.txt vendor/rapidoc.LICENSE 2>/dev/null || cp node_modules/rapidoc/LICENSE vendor/rapidoc.LICENSE
echo "vendored: $(ls vendor | tr '\n' ' ')"
