#!/usr/bin/env bash
# The longer run of the two-halves kill test: N cycles (default 200) of SIGKILL of the outer or
# the inner half at a random moment while documents cross both ways, then every acknowledged
# document must be at its sink once, in per-case order, and delivered at the sending half.
#   tests/reliability/ferry-kill.sh [CYCLES] [BUILD_DIR]
set -euo pipefail
cycles="${1:-200}"
build="${2:-$(dirname "$0")/../../build}"
SLUICE_FERRY_KILL_CYCLES="$cycles" "$build/tests/integration_tests" \
  "either half killed at random moments under load loses nothing and doubles nothing" 2>&1 |
  grep -v '^\[20' | grep -E 'ferry kill cycles|passed|failed|FAILED|with expansion|==' || true
test "${PIPESTATUS[0]}" -eq 0
