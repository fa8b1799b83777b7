#!/usr/bin/env bash
# The telemetry benchmark: a release pairgate server and a simulated fleet (`pairgate-device
# fleet`) on this machine, sharing its cores. Every upload is a batch of readings under the
# device's DPoP-bound access token with a fresh DPoP proof, verified in full by the server
# (token signature and claims, proof signature and claims, jti replay, generation check) and
# acknowledged only after its rows are committed.
#
#   scripts/bench-telemetry.sh [sqlite|postgres|floor] [RATE] [SECONDS] [DEVICES]
#
# `floor` sets the fleet up on SQLite as `sqlite` does, then replaces the server for the timed
# part with benches/telemetry_floor.rs: the same checks of every upload (token, proof, device,
# batch) and an acknowledgement, with nothing stored. It shows what HTTP and verification alone
# cost on this machine, i.e. the most any storage work could win.
#
# RATE is the offered load in uploads/s (open loop; 0 for closed loop), SECONDS the measured
# time after a 10 s warm-up, DEVICES the fleet size (registered and paired first, not measured).
# Environment:
#   PAIRGATE_BENCH_POSTGRES_URL  admin URL for the postgres variant (a scratch database is
#                                created and dropped); default the local test server.
#   BENCH_READINGS               readings per upload (default 10).
#   BENCH_TASKS                  fleet schedulers (default 2000).
#   BENCH_SERVER_ENV             extra "KEY=VALUE ..." for the server, e.g.
#                                "PAIRGATE_TELEMETRY__VERIFIED_TOKEN_CACHE=0".
#   BENCH_KEEP                   keep the work directory.
#   BENCH_SERVER_CPUS            pin the server to these cores (taskset -c), e.g. "0".
#   BENCH_FLEET_CPUS             pin the load generator to these cores, e.g. "1".
set -euo pipefail
cd "$(dirname "$0")/.."

backend=${1:-sqlite}
rate=${2:-10000}
seconds=${3:-60}
devices=${4:-10000}
readings=${BENCH_READINGS:-10}
tasks=${BENCH_TASKS:-2000}
target=${CARGO_TARGET_DIR:-target}

cargo build --release --quiet --bin pairgate --bin pairgate-device
server_bin="$target/release/pairgate"
device_bin="$target/release/pairgate-device"
floor_bin=""
if [ "$backend" = floor ]; then
  floor_bin=$(cargo bench --bench telemetry_floor --no-run 2>&1 \
    | sed -n 's/.*Executable.*(\(.*\)).*/\1/p' | tail -n 1)
  [ -x "$floor_bin" ] || { echo "cannot build benches/telemetry_floor.rs" >&2; exit 1; }
fi

work=$(mktemp -d /tmp/pairgate-bench.XXXXXX)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
export PAIRGATE_BIND="127.0.0.1:$port"
export PAIRGATE_PUBLIC_URL="$base"
PAIRGATE_KEYS__MASTER_KEY=$(head -c 32 /dev/urandom | base64)
export PAIRGATE_KEYS__MASTER_KEY
# One log line per request at info would cost the server more than the upload itself.
export PAIRGATE_LOG__LEVEL=warn
# The bootstrap starts every device's pairing from this one address.
export PAIRGATE_OAUTH__DEVICE_AUTHORIZATION_PER_IP_PER_MINUTE=1000000
export PAIRGATE_DATABASE__POOL_SIZE=16

scratch=""
case "$backend" in
  sqlite|floor)
    export PAIRGATE_DATABASE_URL="sqlite://$work/bench.db"
    ;;
  postgres)
    admin=${PAIRGATE_BENCH_POSTGRES_URL:-postgres://pairgate:pairgate@127.0.0.1:5432/postgres}
    scratch="pairgate_bench_$$"
    psql "$admin" -q -c "CREATE DATABASE $scratch"
    export PAIRGATE_DATABASE_URL="${admin%/*}/$scratch"
    ;;
  *) echo "usage: $0 [sqlite|postgres|floor] [RATE] [SECONDS] [DEVICES]" >&2; exit 2 ;;
esac

server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  if [ -n "$scratch" ]; then psql "$admin" -q -c "DROP DATABASE IF EXISTS $scratch WITH (FORCE)" || true; fi
  if [ -z "${BENCH_KEEP:-}" ]; then rm -rf "$work"; else echo "work directory kept: $work"; fi
}
trap cleanup EXIT

# Starts "$@" as the server in the background and waits until it answers.
start_server() {
  # shellcheck disable=SC2086
  env ${BENCH_SERVER_ENV:-} ${BENCH_SERVER_CPUS:+taskset -c "$BENCH_SERVER_CPUS"} "$@" \
    >>"$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 1 100); do
    curl -fsS "$base/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS "$base/readyz" >/dev/null
}
start_server "$server_bin" serve

echo "== set-up: registering and pairing $devices devices (not measured)"
"$device_bin" fleet --server "$base" --state "$work/fleet" --bootstrap "$devices" --bootstrap-only

if [ -n "$floor_bin" ]; then
  echo "== replacing the server with the verification-only floor (nothing is stored from here on)"
  kill "$server"
  wait "$server" 2>/dev/null || true
  start_server "$floor_bin"
fi

cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
ticks=$(getconf CLK_TCK)
echo "== run: $backend, offered $rate uploads/s, $readings readings each, $seconds s after 10 s warm-up"
echo "   load before: $(cut -d' ' -f1-3 /proc/loadavg)   $(nproc) cores"
server_cpu0=$(cpu "$server")
start=$(date +%s.%N)
/usr/bin/time -f "   load generator: %U s user + %S s system CPU, %M KiB max RSS" \
  ${BENCH_FLEET_CPUS:+taskset -c "$BENCH_FLEET_CPUS"} "$device_bin" fleet --server "$base" --state "$work/fleet" --rate "$rate" --tasks "$tasks" \
  --readings "$readings" --duration-secs "$seconds" --warmup-secs 10
end=$(date +%s.%N)
server_cpu1=$(cpu "$server")
echo "   server: $(awk -v a="$server_cpu0" -v b="$server_cpu1" -v t="$ticks" -v s="$start" -v e="$end" \
  'BEGIN { printf "%.1f CPU s over %.1f s wall (%.2f cores)", (b - a) / t, e - s, (b - a) / t / (e - s) }')"
echo "   load after:  $(cut -d' ' -f1-3 /proc/loadavg)"
echo "   server memory: $(awk '/^Vm(RSS|HWM):/ { printf "%s %.1f MB  ", $1, $2 / 1024 }' "/proc/$server/status")"
grep -E "WARN|ERROR" "$work/server.log" | tail -n 5 || true
