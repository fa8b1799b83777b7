#!/usr/bin/env bash
# Import benchmark for `pairgate erp import`: 100,000 sales (or N, the first argument) from CSV,
# into a fresh SQLite database and, when PAIRGATE_BENCH_POSTGRES_URL is set (a role that may
# create databases), into a fresh PostgreSQL database. Prints rows/s for each, then imports the
# same file again to show the cost of a run that changes nothing.
#
#   cargo build --release --bin pairgate
#   PAIRGATE_BENCH_POSTGRES_URL=postgres://pairgate:pairgate@127.0.0.1:5432/postgres \
#     scripts/bench-erp-import.sh 100000
set -euo pipefail

rows="${1:-100000}"
batch="${BATCH_SIZE:-500}"
bin="${PAIRGATE_BIN:-${CARGO_TARGET_DIR:-target}/release/pairgate}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
[ -x "$bin" ] || { echo "build first: cargo build --release --bin pairgate ($bin missing)" >&2; exit 1; }

file="$work/sales.csv"
python3 - "$rows" "$file" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as f:
    f.write("type,sale_id,serial,sold_at,customer_number,customer_name,customer_kind,end_customer_number,revision\n")
    for i in range(n):
        kind = "distributor" if i % 5 == 0 else "end_customer"
        end = f"C-{(i * 7) % 5000:05d}" if kind == "distributor" else ""
        f.write(f"sale,B-{i:07d},SN-B-{i:07d},2026-0{1 + i % 9}-15T08:00:00Z,"
                f"C-{i % 5000:05d},Customer {i % 5000},{kind},{end},1\n")
PY
echo "generated $rows sales ($(du -h "$file" | cut -f1)); batch size $batch; machine: $(nproc) cores; load: $(uptime | sed 's/.*load average: //')"

# Environment for the binary: only what this script sets.
pg_admin="${PAIRGATE_BENCH_POSTGRES_URL:-}"
for v in $(env | grep -o '^PAIRGATE_[A-Z_]*' || true); do unset "$v"; done
export PAIRGATE_KEYS__MASTER_KEY
PAIRGATE_KEYS__MASTER_KEY="$(head -c 32 /dev/urandom | base64)"
export PAIRGATE_LOG__LEVEL=warn

run() {
  local label="$1"
  "$bin" migrate > /dev/null
  echo "== $label: first run"
  "$bin" erp import --batch-size "$batch" "$file" | tail -1
  echo "== $label: second run (nothing to change)"
  "$bin" erp import --batch-size "$batch" "$file" | tail -1
}

if [ -z "${SKIP_SQLITE:-}" ]; then
  (cd "$work" && PAIRGATE_DATABASE_URL="sqlite://$work/bench.db" run sqlite)
fi

if [ -n "$pg_admin" ]; then
  db="pairgate_bench_$$"
  psql "$pg_admin" -qc "CREATE DATABASE $db"
  url="$(python3 -c 'import sys,urllib.parse as u; p=u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/"+sys.argv[2])))' "$pg_admin" "$db")"
  (cd "$work" && PAIRGATE_DATABASE_URL="$url" run postgres) || true
  psql "$pg_admin" -qc "DROP DATABASE $db WITH (FORCE)"
fi
echo "load after: $(uptime | sed 's/.*load average: //')"
