#!/usr/bin/env bash
# Ingestion throughput against Polars on the same file.
#
#   RECORDS=5000000 bench/ingest.sh
#
# 1. generates one hourly file of RECORDS usage records (reference layout, no faults) with the
#    project's generator;
# 2. loads it with `switchboard ingest file` — validation, dedup, protection through the vault
#    (first-time tokens for every line), Parquet zstd, atomic commit — into a fresh data dir,
#    under /usr/bin/time for the peak memory;
# 3. converts the same file with Polars `scan_csv(...).sink_parquet(...)` (zstd), which neither
#    validates, deduplicates nor protects;
# 4. prints rows/s of both, the ratio, and the peak memory of Switchboard.
set -euo pipefail
cd "$(dirname "$0")/.."

RECORDS="${RECORDS:-5000000}"
OUT=bench/out/ingest
BIN=./target/release/switchboard

command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
python3 -c 'import polars' 2>/dev/null || python3 -m pip install --quiet polars

cargo build --release --quiet -p switchboard
rm -rf "$OUT" && mkdir -p "$OUT"

echo "generating $RECORDS records..."
$BIN demo generate --seed 42 --customers 200000 --hours 1 --records "$RECORDS" --out "$OUT/op" \
    --duplicate-record-rate 0 --duplicate-file-rate 0 --malformed-rate 0 --json > "$OUT/generate.json"
FILE=$(ls "$OUT"/op/mediation/*.cdr | head -n 1)
echo "file: $FILE ($(du -h "$FILE" | cut -f1))"

echo "switchboard ingest file..."
/usr/bin/time -v -o "$OUT/time.txt" $BIN --data-dir "$OUT/data" ingest file "$FILE" --layout reference --json \
    > "$OUT/ingest.json" 2> "$OUT/ingest.log"
sb_rows=$(python3 -c "import json; d=json.load(open('$OUT/ingest.json')); print(d['rows_read'])")
sb_secs=$(python3 -c "import json; d=json.load(open('$OUT/ingest.json')); print(d['seconds'])")
peak_kb=$(grep 'Maximum resident set size' "$OUT/time.txt" | grep -o '[0-9]*$')

echo "polars scan_csv().sink_parquet()..."
pl_secs=$(python3 - "$FILE" "$OUT/polars.parquet" <<'PY'
import sys, time
import polars as pl
src, dst = sys.argv[1], sys.argv[2]
t = time.perf_counter()
pl.scan_csv(src, separator=";", infer_schema_length=10000).sink_parquet(dst, compression="zstd")
print(time.perf_counter() - t)
PY
)

python3 - "$sb_rows" "$sb_secs" "$pl_secs" "$peak_kb" "$(nproc)" <<'PY'
import sys
rows, sb, pl, peak, cores = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
print(f"rows: {rows} on {cores} cores")
print(f"switchboard ingest file: {sb:.2f} s, {rows/sb:,.0f} rows/s, peak memory {peak/1024:.0f} MiB")
print(f"polars sink_parquet:     {pl:.2f} s, {rows/pl:,.0f} rows/s")
print(f"ratio (switchboard / polars rows/s): {pl/sb:.2f}")
PY
