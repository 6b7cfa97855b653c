#!/usr/bin/env bash
# Times the operator data generator at benchmark size (100 000 customers, 24 hourly files,
# RECORDS usage records, 5 million by default) and prints its throughput in records/s.
# The wall time is measured here, around the whole command: source database and
# manifest included, build excluded.
set -euo pipefail
cd "$(dirname "$0")/.."

RECORDS="${RECORDS:-5000000}"
OUT=bench/out/generate
SUMMARY=bench/out/generate.json

cargo build --release --quiet -p switchboard
rm -rf "$OUT"
mkdir -p "$OUT"

start=$(date +%s.%N)
./target/release/switchboard demo generate --seed 42 --customers 100000 --hours 24 \
    --records "$RECORDS" --out "$OUT" --json >"$SUMMARY"
end=$(date +%s.%N)

# The summary's top-level "records": rows written to the usage files.
records=$(grep -o '"records": *[0-9]*' "$SUMMARY" | head -n 1 | grep -o '[0-9]*$')
if [ -z "$records" ]; then
    echo "no \"records\" in $SUMMARY" >&2
    exit 1
fi
awk -v r="$records" -v s="$start" -v e="$end" -v c="$(nproc)" 'BEGIN {
    t = e - s
    printf "generated %d records in %.2f s on %d cores: %.0f records/s\n", r, t, c, r / t
}'
echo "summary: $SUMMARY, files: $OUT/mediation, manifest: $OUT/manifest.json"
