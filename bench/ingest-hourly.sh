#!/usr/bin/env bash
# Ingestion as the hourly job does it, after the daily master data:
#
#   RECORDS=2000000 bench/ingest-hourly.sh
#
# 1. generates two hours of one operator (RECORDS per hour on average, 200,000 customers) with
#    the project's generator;
# 2. loads its CRM with `switchboard ingest master` (every customer and line through the vault);
# 3. loads both hourly files with one `switchboard ingest run` from a folder source, so the second
#    file finds the first one's tokens in the process's cache, as in a long-running server;
# 4. prints seconds and rows/s per file and the peak memory of each command.
set -euo pipefail
cd "$(dirname "$0")/.."

RECORDS="${RECORDS:-2000000}"
OUT=bench/out/ingest-hourly
BIN=./target/release/switchboard

command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
cargo build --release --quiet -p switchboard
rm -rf "$OUT" && mkdir -p "$OUT"

echo "generating two hours, $((RECORDS * 2)) records..."
$BIN demo generate --seed 42 --customers 200000 --hours 2 --records $((RECORDS * 2)) --out "$OUT/op" \
    --duplicate-record-rate 0 --duplicate-file-rate 0 --malformed-rate 0 --json > "$OUT/generate.json"

export SWITCHBOARD__INGEST__MASTER__URL="sqlite://$PWD/$OUT/op/source.db?mode=ro"
export SWITCHBOARD__INGEST__SOURCES__BENCH__KIND=folder
export SWITCHBOARD__INGEST__SOURCES__BENCH__PATH="$PWD/$OUT/op/mediation"
export SWITCHBOARD__INGEST__SOURCES__BENCH__PATTERN='*.cdr'
export SWITCHBOARD__INGEST__SOURCES__BENCH__MIN_AGE_S=0
export SWITCHBOARD__INGEST__SOURCES__BENCH__EXPECTED_DEADLINE_MIN=0

echo "switchboard ingest master..."
/usr/bin/time -v -o "$OUT/time-master.txt" $BIN --data-dir "$OUT/data" ingest master --json \
    > "$OUT/master.json" 2> "$OUT/master.log"
echo "switchboard ingest run (both hours)..."
/usr/bin/time -v -o "$OUT/time-run.txt" $BIN --data-dir "$OUT/data" ingest run --source bench --json \
    > "$OUT/run.json" 2> "$OUT/run.log"

python3 - "$OUT" <<'PY'
import json, re, sys
out = sys.argv[1]
def peak(name):
    text = open(f"{out}/{name}").read()
    return int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)) / 1024
m = json.load(open(f"{out}/master.json"))
print(f"ingest master: {m['status']}, {m['counters']}, peak memory {peak('time-master.txt'):.0f} MiB")
run = json.load(open(f"{out}/run.json"))
for o in run["outcomes"]:
    n = o["counts"]["rows_loaded"]
    print(f"{o['name']}: {n} rows in {o['seconds']:.1f} s, {n / o['seconds']:,.0f} rows/s")
print(f"ingest run: peak memory {peak('time-run.txt'):.0f} MiB")
PY
