#!/usr/bin/env bash
# Durability check: no acknowledged reading is lost when the server is killed with SIGKILL while
# a fleet uploads. The fleet logs every reading id the server acknowledged (only after a 200,
# which the server sends only after the commit); the server is killed mid-run and started again
# (the devices keep their unacknowledged readings and retry); at the end every acknowledged id
# must be in the database, read with the database's own client (sqlite3 / psql), not pairgate.
#
#   scripts/telemetry-sigkill.sh [sqlite|postgres] [RATE] [DEVICES]
set -euo pipefail
cd "$(dirname "$0")/.."

backend=${1:-sqlite}
rate=${2:-3000}
devices=${3:-1000}
target=${CARGO_TARGET_DIR:-target}

cargo build --release --quiet --bin pairgate --bin pairgate-device
server_bin="$target/release/pairgate"
device_bin="$target/release/pairgate-device"

work=$(mktemp -d /tmp/pairgate-sigkill.XXXXXX)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
export PAIRGATE_BIND="127.0.0.1:$port"
export PAIRGATE_PUBLIC_URL="$base"
PAIRGATE_KEYS__MASTER_KEY=$(head -c 32 /dev/urandom | base64)
export PAIRGATE_KEYS__MASTER_KEY
export PAIRGATE_LOG__LEVEL=warn
export PAIRGATE_OAUTH__DEVICE_AUTHORIZATION_PER_IP_PER_MINUTE=1000000

scratch=""
case "$backend" in
  sqlite)
    db="$work/bench.db"
    export PAIRGATE_DATABASE_URL="sqlite://$db"
    stored() { sqlite3 "$db" "SELECT serial || ' ' || reading_id FROM telemetry_readings"; }
    ;;
  postgres)
    admin=${PAIRGATE_BENCH_POSTGRES_URL:-postgres://pairgate:pairgate@127.0.0.1:5432/postgres}
    scratch="pairgate_sigkill_$$"
    psql "$admin" -q -c "CREATE DATABASE $scratch"
    export PAIRGATE_DATABASE_URL="${admin%/*}/$scratch"
    stored() { psql "$PAIRGATE_DATABASE_URL" -Atc "SELECT serial || ' ' || reading_id FROM telemetry_readings"; }
    ;;
  *) echo "usage: $0 [sqlite|postgres] [RATE] [DEVICES]" >&2; exit 2 ;;
esac

server=""
fleet=""
cleanup() {
  for p in $fleet $server; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  if [ -n "$scratch" ]; then psql "$admin" -q -c "DROP DATABASE IF EXISTS $scratch WITH (FORCE)" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

start_server() {
  "$server_bin" serve >>"$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 1 100); do
    curl -fsS "$base/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "the server did not come up" >&2
  exit 1
}

start_server
"$device_bin" fleet --server "$base" --state "$work/fleet" --bootstrap "$devices" --bootstrap-only

echo "== fleet at $rate uploads/s for 30 s; the server is killed (SIGKILL) at 10 s, back at 13 s"
"$device_bin" fleet --server "$base" --state "$work/fleet" --rate "$rate" --tasks 1000 \
  --duration-secs 30 --warmup-secs 0 --ack-log "$work/acks.txt" &
fleet=$!
sleep 10
kill -KILL "$server"
wait "$server" 2>/dev/null || true
echo "   killed the server at $(date +%T); acknowledged so far: $(wc -l <"$work/acks.txt")"
sleep 3
start_server
echo "   server restarted at $(date +%T)"
wait "$fleet"
fleet=""

sort -u "$work/acks.txt" >"$work/acked.sorted"
stored | sort -u >"$work/stored.sorted"
acked=$(wc -l <"$work/acked.sorted")
in_db=$(wc -l <"$work/stored.sorted")
missing=$(comm -23 "$work/acked.sorted" "$work/stored.sorted" | wc -l)
echo "== acknowledged readings: $acked; stored readings: $in_db; acknowledged but missing: $missing"
if [ "$missing" -ne 0 ]; then
  comm -23 "$work/acked.sorted" "$work/stored.sorted" | head
  exit 1
fi
echo "OK: no acknowledged reading was lost"
