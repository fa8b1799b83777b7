#!/bin/bash
# Resident memory of `pairgate serve` before and after N concurrent wrong sign-ins (each for
# another unknown account, so every one is checked against the dummy argon2id hash).
# Usage: scripts/portal-login-memory.sh [CONCURRENCY] [QUEUE] [N]   (defaults 4 64 60)
# Needs target/debug/pairgate (cargo build) and curl; uses a throwaway SQLite database.
set -u
conc=${1:-4}; queue=${2:-64}; n=${3:-60}
cd "$(dirname "$0")/.."
port=$((18000 + RANDOM % 1000))
dir=$(mktemp -d)
PAIRGATE_BIND=127.0.0.1:$port PAIRGATE_PUBLIC_URL=http://127.0.0.1:$port \
PAIRGATE_DATABASE_URL=sqlite://$dir/p.db PAIRGATE_KEYS__MASTER_KEY=$(head -c32 /dev/urandom | base64) \
PAIRGATE_PORTAL__LOGIN_FREE_FAILURES_PER_IP=100000 PAIRGATE_PORTAL__PASSWORD_HASH_CONCURRENCY=$conc \
PAIRGATE_PORTAL__PASSWORD_HASH_QUEUE=$queue PAIRGATE_LOG__LEVEL=warn \
  target/debug/pairgate serve >"$dir/log" 2>&1 &
pid=$!
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.2; done
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
jar=$dir/jar
csrf=$(curl -s -c "$jar" "http://127.0.0.1:$port/login" | grep -o 'name="csrf" value="[^"]*"' | head -1 | sed 's/.*value="//; s/"//')
login() {
  curl -s -o /dev/null -w "%{http_code}\n" -b "$jar" -H "Origin: http://127.0.0.1:$port" \
    --data-urlencode "csrf=$csrf" --data-urlencode "email=$1" --data-urlencode "password=guess guess guess" \
    "http://127.0.0.1:$port/login"
}
login warm@example.com >/dev/null  # the baseline includes one hash's working memory
sleep 0.5
before=$(rss)
clients=()
for i in $(seq "$n"); do login "u$i@example.com" >>"$dir/codes" & clients+=($!); done
wait "${clients[@]}"
sleep 1
after=$(rss)
echo "concurrency=$conc queue=$queue n=$n: RSS before ${before} KiB, after ${after} KiB," \
  "added $(( (after - before) / 1024 )) MiB; answers: $(sort "$dir/codes" | uniq -c | tr '\n' ' ')"
kill "$pid"; wait "$pid" 2>/dev/null
rm -rf "$dir"
