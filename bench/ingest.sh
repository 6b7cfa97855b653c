#!/usr/bin/env bash
# Ingestion throughput against Polars on the same file.
#
#   RECORDS=5000000 bench/ingest.sh
#
# 1. generates two consecutive hourly files of about RECORDS usage records each (reference
#    layout, no faults, 200,000 customers) with the project's generator;
# 2. loads the first with `switchboard ingest file` — validation, dedup, protection through the
#    vault, Parquet zstd, atomic commit — into a fresh data dir, under /usr/bin/time for the peak
#    memory: the vault is empty, so every line's MSISDN, IMSI and IMEI gets its first token
#    ("cold");
# 3. loads the second hour into the same data dir: the operator's lines are known, as in every
#    hour after the first ("warm");
# 4. converts each file with Polars `scan_csv(...).sink_parquet(...)` (zstd), which neither
#    validates, deduplicates nor protects;
# 5. prints rows/s of both, the ratios, and the peak memory of Switchboard.
set -euo pipefail
cd "$(dirname "$0")/.."

RECORDS="${RECORDS:-5000000}"
OUT=bench/out/ingest
BIN=./target/release/switchboard

command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
python3 -c 'import polars' 2>/dev/null || python3 -m pip install --quiet polars

cargo build --release --quiet -p switchboard
rm -rf "$OUT" && mkdir -p "$OUT"

echo "generating two hours of about $RECORDS records each..."
$BIN demo generate --seed 42 --customers 200000 --hours 2 --records "$((RECORDS * 2))" --out "$OUT/op" \
    --duplicate-record-rate 0 --duplicate-file-rate 0 --malformed-rate 0 --json > "$OUT/generate.json"
mapfile -t FILES < <(ls "$OUT"/op/mediation/*.cdr | sort)

run() { # NAME FILE: switchboard, then polars; prints "rows sb_seconds polars_seconds peak_kb"
    local name=$1 file=$2
    /usr/bin/time -v -o "$OUT/time-$name.txt" $BIN --data-dir "$OUT/data" ingest file "$file" --layout reference \
        --json > "$OUT/ingest-$name.json" 2> "$OUT/ingest-$name.log"
    local rows secs peak pl
    rows=$(python3 -c "import json; print(json.load(open('$OUT/ingest-$name.json'))['rows_read'])")
    secs=$(python3 -c "import json; print(json.load(open('$OUT/ingest-$name.json'))['seconds'])")
    peak=$(grep 'Maximum resident set size' "$OUT/time-$name.txt" | grep -o '[0-9]*$')
    pl=$(python3 - "$file" "$OUT/polars-$name.parquet" <<'PY'
import sys, time
import polars as pl
src, dst = sys.argv[1], sys.argv[2]
t = time.perf_counter()
pl.scan_csv(src, separator=";", infer_schema_length=10000).sink_parquet(dst, compression="zstd")
print(time.perf_counter() - t)
PY
)
    echo "$rows $secs $pl $peak"
}

echo "cold: ${FILES[0]} ($(du -h "${FILES[0]}" | cut -f1))"
read -r c_rows c_sb c_pl c_peak < <(run cold "${FILES[0]}")
echo "warm: ${FILES[1]} ($(du -h "${FILES[1]}" | cut -f1))"
read -r w_rows w_sb w_pl w_peak < <(run warm "${FILES[1]}")

python3 - "$(nproc)" "$c_rows" "$c_sb" "$c_pl" "$c_peak" "$w_rows" "$w_sb" "$w_pl" "$w_peak" <<'PY'
import sys
cores = sys.argv[1]
print(f"on {cores} cores")
for label, (rows, sb, pl, peak) in (("cold (first hour, empty vault)", sys.argv[2:6]), ("warm (next hour)", sys.argv[6:10])):
    rows, sb, pl, peak = int(rows), float(sb), float(pl), int(peak)
    print(f"{label}: {rows} rows")
    print(f"  switchboard ingest file: {sb:.2f} s, {rows/sb:,.0f} rows/s, peak memory {peak/1024:.0f} MiB")
    print(f"  polars sink_parquet:     {pl:.2f} s, {rows/pl:,.0f} rows/s")
    print(f"  ratio (switchboard / polars rows/s): {pl/sb:.2f}")
PY
