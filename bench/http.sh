#!/usr/bin/env bash
# Measures the HTTP server with wrk on this machine: requests/s and latency percentiles of
# `GET /healthz` and of an authenticated API read (`GET /api/v1/jobs` with an API key, which
# checks the key in the store and lists the jobs). The server runs from a release build with
# its own SQLite data directory on a free loopback port, logs at `warn` (access logs off);
# wrk uses THREADS threads and CONNECTIONS connections for DURATION.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-10s}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-32}"
OUT=bench/out/http
mkdir -p "$OUT"

command -v wrk >/dev/null || { [ "$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
command -v wrk >/dev/null || { echo "wrk is missing (apt-get install wrk)" >&2; exit 1; }
cargo build --release --quiet -p switchboard
BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/switchboard"

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
    [ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
for v in $(env | grep -o '^SWITCHBOARD__[A-Z_]*' || true); do unset "$v"; done

sb() { (cd "$WORK" && "$BIN" --data-dir "$WORK/data" "$@"); }
password=$(sb --json init 2>"$WORK/init.err" | grep -o '"admin_one_time_password": *"[^"]*"' | sed 's/.*: *"\(.*\)"/\1/')

SWITCHBOARD__LOG__LEVEL=warn SWITCHBOARD__SERVER__ADDRESS=127.0.0.1:0 \
    sb serve --no-jobs >"$WORK/serve.out" 2>"$WORK/serve.err" &
SERVER_PID=$!
for _ in $(seq 1 200); do grep -q '^listening on' "$WORK/serve.out" 2>/dev/null && break; sleep 0.05; done
BASE=$(sed -n 's/^listening on \(http[^ ]*\).*/\1/p' "$WORK/serve.out")
[ -n "$BASE" ] || { echo "the server did not start:" >&2; cat "$WORK/serve.err" >&2; exit 1; }

# An API key, made the way an administrator makes one: sign in, set a password, create it.
JAR="$WORK/cookies"
csrf() { grep -o 'name="_csrf" value="[^"]*"' | head -n 1 | sed 's/.*value="\([^"]*\)"/\1/'; }
t=$(curl -s -c "$JAR" "$BASE/admin/sign-in" | csrf)
curl -s -b "$JAR" -c "$JAR" -o /dev/null --data-urlencode "_csrf=$t" --data-urlencode "name=admin" \
    --data-urlencode "password=$password" --data-urlencode "next=/admin" "$BASE/admin/sign-in"
t=$(curl -s -b "$JAR" "$BASE/admin/account/password" | csrf)
curl -s -b "$JAR" -o /dev/null --data-urlencode "_csrf=$t" --data-urlencode "current=$password" \
    --data-urlencode "new=benchmark password 42" --data-urlencode "confirm=benchmark password 42" "$BASE/admin/account/password"
t=$(curl -s -b "$JAR" "$BASE/admin/api-keys" | csrf)
KEY=$(curl -s -b "$JAR" --data-urlencode "_csrf=$t" --data-urlencode "name=bench" \
    --data-urlencode "permission=jobs.view" "$BASE/admin/api-keys" | grep -o 'sbk_[0-9a-f]*_[0-9a-f]*' | head -n 1)
[ -n "$KEY" ] || { echo "could not create an API key" >&2; exit 1; }
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $KEY" "$BASE/api/v1/jobs")" = 200 ]

run() {
    local name=$1; shift
    wrk -t "$THREADS" -c "$CONNECTIONS" -d "$DURATION" --latency "$@" >"$OUT/$name.txt"
    local rps p50 p99 errors
    rps=$(awk '/^Requests\/sec/ {print $2}' "$OUT/$name.txt")
    p50=$(awk '$1 == "50%" {print $2}' "$OUT/$name.txt")
    p99=$(awk '$1 == "99%" {print $2}' "$OUT/$name.txt")
    errors=$(awk '/Non-2xx/ {print $NF}' "$OUT/$name.txt")
    printf '%-32s %10s req/s   p50 %8s   p99 %8s   non-2xx %s\n' "$name" "$rps" "$p50" "$p99" "${errors:-0}"
}

echo "wrk -t $THREADS -c $CONNECTIONS -d $DURATION on $(nproc) cores (server and wrk share them); store: SQLite"
run healthz "$BASE/healthz"
run api-jobs-with-key -H "Authorization: Bearer $KEY" "$BASE/api/v1/jobs"
