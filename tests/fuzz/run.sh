#!/usr/bin/env bash
# Builds the libFuzzer targets (preset "fuzz") and runs each for SECONDS (default 60) on a
# seed corpus made from the schema examples and the department samples. Exits non-zero if
# any target finds a crash, a leak, a timeout or an out-of-memory.
#   tests/fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_xml fuzz_json fuzz_csv fuzz_xslt fuzz_multipart fuzz_http)

cmake --preset fuzz > /dev/null
cmake --build --preset fuzz

work="${FUZZ_WORK:-build-fuzz/corpus}"
mkdir -p "$work"
seed() {  # seed <target>: a directory of starting inputs
  local dir="$work/seed-$1"
  rm -rf "$dir"; mkdir -p "$dir"
  case "$1" in
    fuzz_xml) find schemas/examples -name '*.xml' -exec cp {} "$dir"/ \; ;;
    fuzz_json) cp adapters/samples/market-regulation.json "$dir"/ ;;
    fuzz_csv) cp adapters/samples/tax-register-gbk.csv "$dir"/ ;;
    fuzz_xslt) cp adapters/samples/public-security.xml "$dir"/ ;;
    fuzz_multipart)
      printf 'multipart/form-data; boundary=b\n--b\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\nx,y\r\n--b--\r\n' > "$dir/one" ;;
    fuzz_http)  # two bytes (little-endian): where the request is split into two reads
      printf '\060\000POST /v1/messages HTTP/1.1\r\nHost: g\r\nContent-Type: application/xml\r\nContent-Length: 8\r\n\r\n<a>x</a>' > "$dir/length"
      printf '\120\000POST /v1/messages HTTP/1.1\r\nHost: g\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n<a>x\r\n4;ext=1\r\n</a>\r\n0\r\nTrailer: t\r\n\r\n' > "$dir/chunked"
      printf '\200\000POST /v1/submit HTTP/1.1\r\nHost: g\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 82\r\n\r\n--b\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\nx,y\r\n--b--\r\n' > "$dir/multipart" ;;
  esac
  echo "$dir"
}
status=0
summary=()
for t in "${targets[@]}"; do
  corpus="$work/$t"
  mkdir -p "$corpus"
  s=$(seed "$t")
  log="$work/$t.log"
  echo "::: $t for ${seconds}s"
  if ASAN_OPTIONS=detect_leaks=1 "build-fuzz/tests/fuzz/$t" -max_total_time="$seconds" \
       -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
       -artifact_prefix="$work/$t-" "$corpus" "$s" > "$log" 2>&1; then
    runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
    summary+=("$t: ${runs:-?} executions, no crash")
  else
    status=1
    summary+=("$t: FAILED (see $log)")
    tail -30 "$log"
  fi
done
printf '%s\n' "${summary[@]}"
exit $status
