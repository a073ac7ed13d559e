#!/usr/bin/env bash
# The gate's figures in one sitting, interleaved, raw results kept (docs/benchmarks.md §5):
#   bench/gate.sh [REPS]          (default 3 repetitions; about 15 minutes)
# 1. the ferry alone: documents/s over the CURVE link into the receiving store, against that
#    store's own append rate, in the same process (sluice-ferry-bench);
# 2. across the gate: 2 KB documents posted over mTLS to the outer half, signed, ferried,
#    re-checked and signed again by the inner half, delivered to the sink (sluice-loadgen
#    --gate), at 16 and 64 connections, with one half alone (sluice-loadgen) beside it;
# 3. the peer a user would build instead: two RabbitMQ nodes, quorum queues on both, joined
#    by a shovel with ack-mode on-confirm (../shared/bench/rabbitmq/shovel.sh), the same
#    shapes, and one node alone. The brokers run only for their runs.
# Writes bench/results/<UTC date-time>-gate.jsonl and prints the tables (bench/summarize.py).
set -euo pipefail
cd "$(dirname "$0")/.."
reps="${1:-3}"
out="bench/results/$(date -u +%Y-%m-%d-%H%M)-gate.jsonl"
mkdir -p bench/results
: > "$out"
note() { printf '{"note":"%s"}\n' "$*" >> "$out"; echo "::: $*"; }

cmake --preset default > /dev/null
cmake --build --preset default
certs/make-dev-pki.sh var/pki > /dev/null

note "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
note "date: $(date -u +%Y-%m-%dT%H:%MZ)"

note "the ferry alone vs the receiving store's appends"
build/bench/sluice-ferry-bench --messages 100000 --size 2048 --runs 5 --dir build/ferry-bench \
  2>/dev/null | tee -a "$out"

note "across the gate (two sluiced halves) and one half alone, interleaved"
for rep in $(seq "$reps"); do
  for c in 16 64; do
    build/bench/sluice-loadgen --gate --connections "$c" --messages 20000 \
      --label "sluice gate c$c rep$rep" --pki var/pki --dir build/loadgen-gate | tee -a "$out"
    build/bench/sluice-loadgen --connections "$c" --messages 20000 \
      --label "sluice one half c$c rep$rep" --pki var/pki --dir build/loadgen | tee -a "$out"
  done
done

note "RabbitMQ: shovel pair (quorum on both nodes, on-confirm) and one node, same shapes"
rm -rf build/rabbitmq
cp -r ../shared/bench/rabbitmq build/rabbitmq
chmod -R u+w build/rabbitmq
(cd build/rabbitmq && ./broker.sh install > /dev/null 2>&1 && npm ci --no-audit --no-fund --loglevel=error &&
 ./broker.sh start > /dev/null && ./shovel.sh start)
trap '(cd build/rabbitmq && ./shovel.sh stop > /dev/null 2>&1; ./broker.sh stop > /dev/null 2>&1) || true' EXIT
for rep in $(seq "$reps"); do
  for c in 16 64; do
    (cd build/rabbitmq && node bench.js --url amqp://guest:guest@127.0.0.1:5672 --queue gate.in \
       --consume-url amqp://guest:guest@127.0.0.1:5673 --consume-queue gate.out \
       --queue-type quorum --size 2048 --n 20000 --channels "$c" --window 1 \
       --label "rabbitmq shovel pair c$c rep$rep") | tee -a "$out"
    (cd build/rabbitmq && node bench.js --queue-type quorum --size 2048 --n 20000 --channels "$c" \
       --window 1 --label "rabbitmq one node c$c rep$rep") | tee -a "$out"
  done
done
(cd build/rabbitmq && ./shovel.sh stop > /dev/null 2>&1; ./broker.sh stop > /dev/null 2>&1) || true
trap - EXIT

python3 bench/summarize.py "$out"
