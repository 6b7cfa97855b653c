#!/usr/bin/env bash
# Throughput of the privacy vault's hot paths, with criterion (release build):
#   tokenize_cached             known values, tokens from the in-memory cache (target ≥ 5M/s per core)
#   tokenize_known_uncached     known values the cache does not hold: fingerprint and directory
#   tokenize_first_time_sqlite  new values, batched vault inserts on SQLite   (target ≥ 50k/s)
#   ff1_msisdn                  FF1 format-preserving encryption of MSISDNs   (target ≥ 200k/s per core)
# The benchmark runs on one thread, so its figures are per core.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench -p sb-privacy --bench privacy -- --noplot 2>&1 | tee bench/out-privacy.txt | grep -E '^privacy/|thrpt'
