#!/usr/bin/env bash
# Runs Quarry's whole test suite. Installs what the tests need when it is missing
# (mold, s3s-fs), reuses a build directory outside the clone, and starts/stops any server
# the tests need by PID (the test binaries start their own S3 server).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/quarry-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

say() { echo "== $*" >&2; }

# A faster linker: every test binary links the whole engine.
if ! command -v mold >/dev/null 2>&1; then
  say "installing mold"
  (apt-get update -qq && apt-get install -y -qq mold) >/dev/null 2>&1 || say "mold not installed; using the default linker"
fi
if command -v mold >/dev/null 2>&1; then
  export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C link-arg=-fuse-ld=mold"
fi

# The S3-protocol server the S3 tests run against (see ../shared/SERVICES.md).
S3S_VERSION=0.14.1
if [ -z "${QUARRY_S3S_FS:-}" ]; then
  if ! "$HOME/.cargo/bin/s3s-fs" --version 2>/dev/null | grep -q "$S3S_VERSION"; then
    say "installing s3s-fs $S3S_VERSION"
    cargo install "s3s-fs@$S3S_VERSION" --features binary --locked --quiet
  fi
  export QUARRY_S3S_FS="$HOME/.cargo/bin/s3s-fs"
fi

# PostgreSQL and MariaDB (the metastore backends' tests). On this kind of machine they run
# already; start them when they do not answer.
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  say "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
fi
if ! mysqladmin -h 127.0.0.1 -u root ping >/dev/null 2>&1; then
  say "starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
fi
for _ in $(seq 1 60); do
  pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null && mysqladmin -h 127.0.0.1 -u root ping >/dev/null 2>&1 && break
  sleep 0.5
done

# Real PostgreSQL clients for the wire-protocol tests: psql (preinstalled), psycopg 3 and 2,
# SQLAlchemy with pandas, pgjdbc (Java is preinstalled) and pyodbc over psqlODBC.
if ! python3 -c "import psycopg, psycopg2, sqlalchemy, pandas, pyodbc" 2>/dev/null; then
  say "installing the Python drivers"
  python3 -m pip install -q "psycopg[binary]==3.3.9" "psycopg2-binary==2.9.13" \
    "sqlalchemy==2.1.9" "pandas==3.1.1" "pyodbc==5.5.0"
fi
if [ ! -f /usr/share/java/postgresql.jar ] || ! odbcinst -q -d 2>/dev/null | grep -q "PostgreSQL Unicode"; then
  say "installing pgjdbc and psqlODBC"
  (apt-get update -qq && apt-get install -y -qq libpostgresql-jdbc-java odbc-postgresql unixodbc) >/dev/null
fi

say "building"
cargo build --locked --workspace --all-targets
say "testing"
log="$(mktemp)"
status=0
cargo test --locked --workspace --no-fail-fast 2>&1 | tee "$log" || status=$?
# One closing line for the whole suite (cargo prints one per test binary).
passed=$(grep -Eo '^test result: [A-Za-z]+\. [0-9]+ passed' "$log" | awk '{s += $4} END {print s + 0}')
failed=$(grep -Eo '^test result: [A-Za-z]+\. [0-9]+ passed; [0-9]+ failed' "$log" | awk '{s += $6} END {print s + 0}')
rm -f "$log"
echo "$passed passed, $failed failed"
exit "$status"
