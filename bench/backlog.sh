#!/usr/bin/env bash
# The deep-backlog figures of docs/benchmarks.md (§4): a store with MESSAGES queued for a
# destination that is down, built through the store's own appends (sluice-backlog-bench), then
#   1. sluice-backlog-bench --open-only: a fresh process opens it and leases once, five times,
#      against an empty store opened the same way (the baseline);
#   2. sluiced itself on that store, on its embedded defaults except the store's path and
#      bounds, its destination refusing connections: time until it is ready, its anonymous
#      memory (RssAnon) every 10 s for a minute while the breaker probes, and the time a
#      SIGTERM takes.
#   bench/backlog.sh [MESSAGES]      (default 10000000: about 15 minutes and 9 GB of disk)
#   REUSE=1 bench/backlog.sh         steps 1 and 2 on the store an earlier run left
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-10000000}"
dir=build/backlog
step=$(( n / 10 > 0 ? n / 10 : 1 ))

cmake --preset default > /dev/null
cmake --build --preset default
certs/make-dev-pki.sh var/pki > /dev/null

echo "::: machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(date -u +%Y-%m-%dT%H:%MZ)"
if [ "${REUSE:-0}" != 1 ]; then
  echo "::: the backlog: $n messages through Store::append_async, destination down"
  build/bench/sluice-backlog-bench --messages "$n" --step "$step" --dir "$dir" --opens 5 2>/dev/null
fi
echo "::: a fresh process opens that store"
build/bench/sluice-backlog-bench --open-only --dir "$dir" --opens 5 2>/dev/null

# sluiced on store $1 (label $2), its destination down.
run_sluiced() {
  local store="$1" label="$2" conf="$dir/sluiced/$2.toml" ready="$dir/sluiced/$2.ready.json"
  local log="$dir/sluiced/$2.log"
  # Paths in a configuration file are relative to its folder: the PKI, schemas and mappings of
  # this tree are named absolutely; state (audit, quarantine, spools) stays under $dir/sluiced.
  build/gateway/sluiced --print-default-config |
    sed -e "s|\"var/pki/|\"$root/var/pki/|g" \
        -e "s|^schema_dir = \"schemas\"|schema_dir = \"$root/schemas\"|" \
        -e "s|\"adapters/|\"$root/adapters/|" \
        -e "s|^state_dir = \"var\"|state_dir = \"$2-state\"|" \
        -e "s|^path = \"var/outer/store\"|path = \"$store\"|" \
        -e 's|^map_size_mb = 2048|map_size_mb = 24576|' \
        -e 's|^max_queued_mb = 512|max_queued_mb = 16777216|' \
        -e 's|^max_queued_messages = 1000000|max_queued_messages = 1000000000|' \
        -e 's|^url = "http://127.0.0.1:9000/inbox"|url = "http://127.0.0.1:9/inbox"|' \
        -e 's|^port = 8443|port = 18443|' -e 's|^port = 8444|port = 18444|' > "$conf"
  rm -f "$ready"
  local start pid rc rss
  start=$(date +%s%N)
  build/gateway/sluiced --config "$conf" --ready-file "$ready" > "$log" 2>&1 &
  pid=$!
  trap "kill -KILL $pid 2>/dev/null || true" EXIT
  for _ in $(seq 6000); do [ -f "$ready" ] && break; sleep 0.01; done
  [ -f "$ready" ] || { echo "sluiced did not start"; tail "$log"; exit 1; }
  echo "{\"sluiced\":\"$label\",\"ready_ms\":$(( ($(date +%s%N) - start) / 1000000 ))}"
  for t in 0 10 20 30 40 50 60; do
    [ "$t" = 0 ] || sleep 10
    rss=$(awk '/^RssAnon:/{print $2}' "/proc/$pid/status")
    echo "{\"sluiced\":\"$label\",\"after_s\":$t,\"rss_anon_kb\":$rss}"
  done
  grep -m1 -E "store .* opened" "$log" || true
  grep -m1 -E "backs off" "$log" || true
  start=$(date +%s%N)
  kill -TERM "$pid"
  wait "$pid" && rc=0 || rc=$?
  trap - EXIT
  echo "{\"sluiced\":\"$label\",\"sigterm_exit_ms\":$(( ($(date +%s%N) - start) / 1000000 )),\"exit_code\":$rc}"
}

root="$PWD"
rm -rf "$dir/sluiced" "$dir/sluiced-empty-store"
mkdir -p "$dir/sluiced"
echo "::: sluiced on an empty store (the baseline), its destination down"
run_sluiced "$root/$dir/sluiced-empty-store" empty
echo "::: sluiced on the backlog, its destination down"
run_sluiced "$root/$dir/store" backlog
