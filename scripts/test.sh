#!/usr/bin/env bash
# Every check CI runs, from a clean clone on a fresh machine: it installs and starts what the
# tests need when missing (as root, Debian), then runs formatting, lints, and the whole test
# suite twice: on SQLite, then on PostgreSQL (SWITCHBOARD_TEST_PG).
set -euo pipefail
cd "$(dirname "$0")/.."

PG_URL="${SWITCHBOARD_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
step() { printf '\n==> %s\n' "$*"; }

apt_updated=0
ensure_packages() {
    local missing=()
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "missing packages: ${missing[*]} (run as root to install them)" >&2
        return 1
    fi
    if [ $apt_updated -eq 0 ]; then apt-get update -qq; apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

pg_ok() { psql "$PG_URL" -Atqc 'select 1' >/dev/null 2>&1; }

ensure_postgres() {
    pg_ok && return 0
    step "starting PostgreSQL"
    ensure_packages postgresql postgresql-client
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || true
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
    if ! pg_ok; then
        # A fresh Debian cluster asks for passwords on TCP; tests connect on loopback only.
        local hba="/etc/postgresql/$version/main/pg_hba.conf"
        if ! grep -q '^host all postgres 127.0.0.1/32 trust' "$hba"; then
            sed -i '1i host all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust' "$hba"
        fi
        pg_ctlcluster --skip-systemctl-redirect "$version" main reload
        for _ in $(seq 1 30); do pg_ok && break; sleep 1; done
    fi
    pg_ok || { echo "PostgreSQL is not reachable at $PG_URL" >&2; exit 1; }
}

step "tools"
command -v psql >/dev/null || ensure_packages postgresql-client
ensure_postgres
# The SFTP source's tests start their own OpenSSH server on a loopback port.
[ -x /usr/sbin/sshd ] && command -v ssh-keygen >/dev/null || ensure_packages openssh-server openssh-client
rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy
if cargo nextest --version >/dev/null 2>&1; then
    run_tests() { cargo nextest run --workspace --no-fail-fast "$@"; }
else
    run_tests() { cargo test --workspace --no-fail-fast "$@"; }
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

# The monitoring tests also run through NATS JetStream when a server answers on 4222.
if (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
    export SWITCHBOARD_TEST_NATS="${SWITCHBOARD_TEST_NATS:-nats://127.0.0.1:4222}"
else
    echo "no NATS server on 127.0.0.1:4222: the monitoring bus is tested in process only" >&2
fi

# Master data is also read from MySQL/MariaDB when a server answers on 3306 (as root without a
# password, Debian's default for local root; database `test`).
if (exec 3<>/dev/tcp/127.0.0.1/3306) 2>/dev/null; then
    export SWITCHBOARD_TEST_MYSQL="${SWITCHBOARD_TEST_MYSQL:-mysql://root@127.0.0.1:3306/test}"
else
    echo "no MySQL/MariaDB on 127.0.0.1:3306: master data is tested on SQLite and PostgreSQL sources only" >&2
fi

step "tests on SQLite"
SWITCHBOARD_TEST_PG="" run_tests --locked

step "tests on PostgreSQL ($PG_URL)"
SWITCHBOARD_TEST_PG="$PG_URL" run_tests --locked

if cargo nextest --version >/dev/null 2>&1; then
    step "doc tests"
    cargo test --workspace --doc --locked
fi

step "browser tests (Chromium, playwright-core)"
ensure_packages chromium chromium-driver
[ -d crates/sb-web/e2e/node_modules/playwright-core ] || (cd crates/sb-web/e2e && npm ci --no-audit --no-fund)
cargo build -p switchboard --locked
(cd crates/sb-web/e2e && npm test)
