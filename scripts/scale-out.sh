#!/usr/bin/env bash
# Scale-out, shown on one machine: two release `pairgate serve` instances on one scratch
# PostgreSQL database and one master key, behind HAProxy configured as docs/operations.md shows
# ("Several instances"; the block is read from there, with loopback ports and plain HTTP), and a
# simulated fleet (`pairgate-device fleet`) that pairs, then uploads and refreshes through the
# balancer. Midway, `pairgate keys rotate` adds a signing key; the instances reload their key
# ring only hourly here, so they can learn of it only through PostgreSQL's LISTEN/NOTIFY, and the
# new key starts signing a few seconds later, while the fleet keeps going.
#
#   scripts/scale-out.sh [SECONDS] [DEVICES] [RATE]
#
# SECONDS measured after a warm-up (default 30), DEVICES paired first (default 500, not
# measured), RATE uploads/s offered, open loop (default 300). Prints, per instance, the requests
# it served (its own /metrics), its CPU and peak memory; PostgreSQL's and HAProxy's CPU; the
# fleet's throughput, latency and failures. Exits non-zero when the fleet saw a failure, when an
# instance served less than 30 % of the requests, or when an instance did not publish the new key.
# Environment:
#   PAIRGATE_BENCH_POSTGRES_URL  admin URL (a scratch database is created and dropped); default
#                                postgres://pairgate_test:pairgate_test@127.0.0.1:5432/postgres.
#   SCALE_WARMUP                 warm-up seconds before measuring (default 5).
#   SCALE_TOKEN_SECS             access-token lifetime; devices refresh 60 s before expiry, so
#                                each refreshes every SCALE_TOKEN_SECS - 60 s (default 75).
#   SCALE_ROTATE_DELAY           seconds after the rotation that the new key signs (default 5).
#   SCALE_SERVER_CPUS, SCALE_FLEET_CPUS
#                                pin the instances and the fleet (taskset -c), e.g. "0" and "1".
#   SCALE_KEEP                   keep the work directory (logs, haproxy.cfg, fleet state).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-30}
devices=${2:-500}
rate=${3:-300}
warmup=${SCALE_WARMUP:-5}
token_secs=${SCALE_TOKEN_SECS:-75}
rotate_delay=${SCALE_ROTATE_DELAY:-5}
admin=${PAIRGATE_BENCH_POSTGRES_URL:-postgres://pairgate_test:pairgate_test@127.0.0.1:5432/postgres}
target=${CARGO_TARGET_DIR:-target}
ticks=$(getconf CLK_TCK)

say() { echo "== $*"; }
die() { echo "scale-out: $*" >&2; exit 1; }

# --- prerequisites: HAProxy, a running PostgreSQL, release binaries --------------------------
if ! command -v haproxy >/dev/null 2>&1; then
  say "installing HAProxy"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q haproxy >/dev/null
fi
if ! psql "$admin" -Atqc 'SELECT 1' >/dev/null 2>&1; then
  say "starting PostgreSQL"
  pg_ctlcluster 15 main start
  for _ in $(seq 1 50); do psql "$admin" -Atqc 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.2; done
fi
cargo build --release --quiet --bin pairgate --bin pairgate-device
server_bin="$target/release/pairgate"
device_bin="$target/release/pairgate-device"

# --- clean-up of everything this script starts, by PID, on any exit -------------------------
work=$(mktemp -d /tmp/pairgate-scale.XXXXXX)
scratch="pairgate_scale_$$"
started=()
cleanup() {
  local pid
  for ((i = ${#started[@]} - 1; i >= 0; i--)); do
    pid=${started[i]}
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${started[@]}"; do wait "$pid" 2>/dev/null || true; done
  psql "$admin" -q -c "DROP DATABASE IF EXISTS $scratch WITH (FORCE)" 2>/dev/null || true
  if [ -z "${SCALE_KEEP:-}" ]; then rm -rf "$work"; else echo "work directory kept: $work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
lb_port=$(free_port)
ports=("$(free_port)" "$(free_port)")
base="http://127.0.0.1:$lb_port"

psql "$admin" -q -c "CREATE DATABASE $scratch"
export PAIRGATE_DATABASE_URL="${admin%/*}/$scratch"
PAIRGATE_KEYS__MASTER_KEY=$(head -c 32 /dev/urandom | base64)
export PAIRGATE_KEYS__MASTER_KEY
export PAIRGATE_PUBLIC_URL="$base"
export PAIRGATE_SERVER__TRUSTED_PROXIES='["127.0.0.1/32"]'
export PAIRGATE_LOG__LEVEL=warn
# The whole fleet starts pairing from this one address.
export PAIRGATE_OAUTH__DEVICE_AUTHORIZATION_PER_IP_PER_MINUTE=1000000
export PAIRGATE_OAUTH__ACCESS_TOKEN_LIFETIME_SECS="$token_secs"
# Only NOTIFY (or a token naming an unknown key) can teach an instance of the rotation.
export PAIRGATE_KEYS__RING_RELOAD_SECS=3600
export PAIRGATE_KEYS__PUBLISH_BEFORE_USE_SECS=3600

# --- the two instances, one after the other (the first applies the migrations) ---------------
servers=()
for n in 0 1; do
  # shellcheck disable=SC2086
  PAIRGATE_BIND="127.0.0.1:${ports[n]}" ${SCALE_SERVER_CPUS:+taskset -c "$SCALE_SERVER_CPUS"} \
    "$server_bin" serve >>"$work/instance$((n + 1)).log" 2>&1 &
  servers+=("$!")
  started+=("$!")
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:${ports[n]}/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS "http://127.0.0.1:${ports[n]}/readyz" >/dev/null \
    || die "instance $((n + 1)) did not become ready: $(tail -n 5 "$work/instance$((n + 1)).log")"
done

# --- HAProxy, with the documented configuration ----------------------------------------------
awk '/^### HAProxy/ { s = 1 } s && /^```haproxy/ { b = 1; next } b && /^```/ { exit } b' \
  docs/operations.md \
  | sed -e "s|bind :443 ssl crt /etc/haproxy/id.example.com.pem|bind 127.0.0.1:$lb_port|" \
    -e "s|server pairgate1 10.0.0.11:8080|server pairgate1 127.0.0.1:${ports[0]}|" \
    -e "s|server pairgate2 10.0.0.12:8080|server pairgate2 127.0.0.1:${ports[1]}|" \
    >"$work/haproxy.cfg"
for expected in "bind 127.0.0.1:$lb_port" "127.0.0.1:${ports[0]}" "127.0.0.1:${ports[1]}"; do
  grep -qF "$expected" "$work/haproxy.cfg" \
    || die "docs/operations.md's HAProxy block no longer has the lines this script replaces"
done
haproxy -c -q -f "$work/haproxy.cfg" >/dev/null || die "haproxy rejects $work/haproxy.cfg"
haproxy -db -f "$work/haproxy.cfg" >>"$work/haproxy.log" 2>&1 &
balancer=$!
started+=("$balancer")
for _ in $(seq 1 100); do curl -fsS "$base/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "$base/readyz" >/dev/null || die "HAProxy does not answer: $(tail -n 5 "$work/haproxy.log")"

say "set-up: pairing $devices devices through HAProxy at $base (not measured)"
timeout 600 "$device_bin" fleet --server "$base" --state "$work/fleet" --bootstrap "$devices" \
  --bootstrap-only

# --- measuring helpers ------------------------------------------------------------------------
# utime + stime of one process, in ticks.
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# "pid ticks" of every process named postgres.
pg_cpu() {
  local stat
  for stat in /proc/[0-9]*/stat; do
    awk '$2 == "(postgres)" { print $1, $14 + $15 }' "$stat" 2>/dev/null || true
  done
}
# Requests an instance answered, from its /metrics (health checks and scrapes left out).
served() {
  curl -fsS "http://127.0.0.1:$1/metrics" \
    | awk -v only="${2:-}" '/^pairgate_http_requests_total\{/ && !/route="\/(readyz|metrics)"/ {
        if (only == "" || index($0, "route=\"" only "\"")) n += $NF } END { print n + 0 }'
}
kids() { curl -fsS "http://127.0.0.1:$1/oauth/jwks" 2>/dev/null || true; }

before_cpu=() before_req=() before_tok=()
for n in 0 1; do
  before_cpu+=("$(cpu "${servers[n]}")")
  before_req+=("$(served "${ports[n]}")")
  before_tok+=("$(served "${ports[n]}" /oauth/token)")
done
pg_cpu >"$work/pg.before"
lb_before=$(cpu "$balancer")

# --- the run, with a rotation midway ----------------------------------------------------------
say "run: $devices devices, $rate uploads/s offered for $seconds s after $warmup s warm-up," \
  "tokens refreshed every $((token_secs - 60)) s"
start=$(date +%s.%N)
# shellcheck disable=SC2086
timeout $((warmup + seconds + 120)) ${SCALE_FLEET_CPUS:+taskset -c "$SCALE_FLEET_CPUS"} \
  "$device_bin" fleet --server "$base" --state "$work/fleet" --rate "$rate" --tasks 1000 \
  --duration-secs "$seconds" --warmup-secs "$warmup" >"$work/fleet.out" &
fleet=$!
started+=("$fleet")

sleep $((warmup + seconds / 2))
rotated_at=$(date +%s%N)
kid=$(PAIRGATE_KEYS__PUBLISH_BEFORE_USE_SECS="$rotate_delay" \
  PAIRGATE_KEYS__RING_RELOAD_SECS="$rotate_delay" "$server_bin" keys rotate \
  | sed -n 's/^signing key \([^ ]*\) added.*/\1/p')
[ -n "$kid" ] || die "pairgate keys rotate printed no key id"
say "rotated: pairgate keys rotate added key $kid (signs from $rotate_delay s on)"
learned=()
for n in 0 1; do
  learned+=("never")
  for _ in $(seq 1 100); do
    if kids "${ports[n]}" | grep -qF "\"$kid\""; then
      learned[n]="$(( ($(date +%s%N) - rotated_at) / 1000000 )) ms"
      break
    fi
    sleep 0.05
  done
  echo "   instance $((n + 1)) publishes it after ${learned[n]}"
done

fleet_status=0
wait "$fleet" || fleet_status=$?
end=$(date +%s.%N)
summary=$(cat "$work/fleet.out")
echo "   fleet: $summary"

# --- the table -------------------------------------------------------------------------------
wall=$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.1f", e - s }')
total=0 reqs=() toks=() cpus=()
for n in 0 1; do
  reqs+=("$(($(served "${ports[n]}") - before_req[n]))")
  toks+=("$(($(served "${ports[n]}" /oauth/token) - before_tok[n]))")
  cpus+=("$(($(cpu "${servers[n]}") - before_cpu[n]))")
  total=$((total + reqs[n]))
done
pg_cpu >"$work/pg.after"
pg_ticks=$(awk 'NR == FNR { b[$1] = $2; next } { d += $2 - ($1 in b ? b[$1] : 0) } END { print d + 0 }' \
  "$work/pg.before" "$work/pg.after")
lb_ticks=$(($(cpu "$balancer") - lb_before))
new_tokens=$(python3 - "$work/fleet/fleet.json" "$kid" <<'EOF'
import base64, json, sys
devices = json.load(open(sys.argv[1]))
def kid(token):
    head = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"]
print(sum(kid(d["tokens"]["access_token"]) == sys.argv[2] for d in devices), len(devices))
EOF
)

echo
printf '%-12s %10s %7s %10s %8s %7s %10s\n' process requests share "token req" "CPU s" cores "VmHWM MB"
for n in 0 1; do
  hwm=$(awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/${servers[n]}/status")
  awk -v name="instance $((n + 1))" -v r="${reqs[n]}" -v t="$total" -v k="${toks[n]}" \
    -v c="${cpus[n]}" -v hz="$ticks" -v w="$wall" -v m="$hwm" 'BEGIN {
      printf "%-12s %10d %6.1f%% %10d %8.1f %7.2f %10s\n", name, r, t ? 100 * r / t : 0, k,
        c / hz, c / hz / w, m }'
done
for row in "postgres $pg_ticks" "haproxy $lb_ticks"; do
  set -- $row
  awk -v name="$1" -v c="$2" -v hz="$ticks" -v w="$wall" 'BEGIN {
    printf "%-12s %10s %7s %10s %8.1f %7.2f %10s\n", name, "", "", "", c / hz, c / hz / w, "" }'
done
echo "(CPU over the whole run, warm-up included: $wall s wall; postgres is every postgres process"
echo " on this machine; requests leave out health checks and /metrics)"
read -r signed held <<<"$new_tokens"
echo "access tokens held by the fleet at the end: $signed of $held signed by the new key"
echo "fleet: $(sed -n 's/.*acknowledged (\([0-9]*\)\/s).*/\1 uploads\/s/p' <<<"$summary")," \
  "p50 $(sed -n 's/.*p50 \([0-9.]* ms\).*/\1/p' <<<"$summary")," \
  "p99 $(sed -n 's/.*p99 \([0-9.]* ms\).*/\1/p' <<<"$summary")," \
  "failures $(sed -n 's/.*failures \(.*\)$/\1/p' <<<"$summary")"

# --- verdict ---------------------------------------------------------------------------------
status=0
[ "$fleet_status" -eq 0 ] || { echo "FAIL: the fleet exited with $fleet_status" >&2; status=1; }
grep -q 'failures {}$' <<<"$summary" || { echo "FAIL: the fleet saw failures" >&2; status=1; }
for n in 0 1; do
  if [ $((reqs[n] * 100)) -lt $((total * 30)) ]; then
    echo "FAIL: instance $((n + 1)) served ${reqs[n]} of $total requests (under 30 %)" >&2
    status=1
  fi
  [ "${learned[n]}" != never ] || { echo "FAIL: instance $((n + 1)) never published $kid" >&2; status=1; }
done
grep -hE "WARN|ERROR" "$work"/instance*.log | tail -n 5 || true
exit "$status"
