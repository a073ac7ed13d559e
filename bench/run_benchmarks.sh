#!/usr/bin/env bash
# Every figure of docs/benchmarks.md in one sitting, interleaved, raw results kept:
#   bench/run_benchmarks.sh [REPS]          (default 3 repetitions; about 15 minutes)
# Writes bench/results/<UTC date-time>.jsonl and prints the summary tables
# (bench/summarize.py). RabbitMQ comes from ../shared/bench/rabbitmq, copied to build/rabbitmq
# (that folder is read-only), installed with its pinned package-lock.json; the broker is
# started for its runs and stopped afterwards, so the two never run at the same time.
set -euo pipefail
cd "$(dirname "$0")/.."
reps="${1:-3}"
out="bench/results/$(date -u +%Y-%m-%d-%H%M).jsonl"
mkdir -p bench/results
: > "$out"
note() { printf '{"note":"%s"}\n' "$*" >> "$out"; echo "::: $*"; }

cmake --preset default > /dev/null
cmake --build --preset default
certs/make-dev-pki.sh var/pki > /dev/null
certs/make-dev-pki.sh var/pki-rsa --rsa > /dev/null

note "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
note "date: $(date -u +%Y-%m-%dT%H:%MZ)"

note "queue: durable appends vs raw LMDB"
build/bench/sluice-queue-bench --messages 100000 --baseline-messages 1000 --size 2048 \
  --producers 4 --window 512 --runs 5 --dir build/queue-bench | tee -a "$out"

note "pipeline stages, one core"
for stage in parse prepare validate json csv sign-ecdsa sign-rsa verify-ecdsa verify-rsa xmlsec-sign; do
  build/bench/sluice-pipeline-bench --stage "$stage" --runs 5 --seconds 2 \
    --pki var/pki --pki-rsa var/pki-rsa | tee -a "$out"
done

note "openssl speed (the crypto ceiling, one core)"
openssl speed -seconds 3 ecdsap256 rsa2048 2>/dev/null | grep -E '^ *(256 bits ecdsa|rsa 2048 bits)' |
  while read -r line; do printf '{"openssl_speed":"%s"}\n' "$(echo "$line" | tr -s ' ')" | tee -a "$out"; done

note "end to end through sluiced (mTLS in, HTTP to the sink), signing on (the default) and off, interleaved"
for rep in $(seq "$reps"); do
  for c in 1 16 64; do
    n=30000; [ "$c" = 1 ] && n=5000
    build/bench/sluice-loadgen --connections "$c" --messages "$n" --label "sluice+signing c$c rep$rep" \
      --pki var/pki --dir build/loadgen | tee -a "$out"
  done
  for c in 16 64; do
    build/bench/sluice-loadgen --connections "$c" --messages 30000 --no-signing \
      --label "sluice nosign c$c rep$rep" --pki var/pki --dir build/loadgen | tee -a "$out"
  done
  build/bench/sluice-loadgen --connections 64 --messages 30000 --delivery-pipeline 8 \
    --label "sluice+signing c64 pipeline8 rep$rep" --pki var/pki --dir build/loadgen | tee -a "$out"
done

note "RabbitMQ quorum queues (fsync before confirm), same in-flight shapes"
rm -rf build/rabbitmq
cp -r ../shared/bench/rabbitmq build/rabbitmq
chmod -R u+w build/rabbitmq
(cd build/rabbitmq && ./broker.sh install > /dev/null 2>&1 && npm ci --no-audit --no-fund --loglevel=error &&
 ./broker.sh start > /dev/null)
trap '(cd build/rabbitmq && ./broker.sh stop > /dev/null 2>&1) || true' EXIT
for rep in $(seq "$reps"); do
  for c in 1 16 64; do
    n=30000; [ "$c" = 1 ] && n=5000
    (cd build/rabbitmq && node bench.js --queue-type quorum --size 2048 --n "$n" --channels "$c" \
       --window 1 --label "rabbitmq quorum c$c w1 rep$rep") | tee -a "$out"
  done
  (cd build/rabbitmq && node bench.js --queue-type quorum --size 2048 --n 100000 --channels 4 \
     --window 256 --label "rabbitmq quorum c4 w256 rep$rep") | tee -a "$out"
done
(cd build/rabbitmq && ./broker.sh stop > /dev/null 2>&1) || true
trap - EXIT

python3 bench/summarize.py "$out"
