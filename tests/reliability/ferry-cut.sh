#!/usr/bin/env bash
# The longer run of the link-cut test: the inner half killed and kept down for SECONDS (default
# 300) while a sender posts to the outer without pause; the backlog must be held on disk (the
# outer's anonymous memory grows by less than 64 MB), then drain, once each, in case order,
# when the inner comes back. Prints the documents held, the outer's RssAnon and the drain time.
#   tests/reliability/ferry-cut.sh [SECONDS] [BUILD_DIR]
set -euo pipefail
seconds="${1:-300}"
build="${2:-$(dirname "$0")/../../build}"
SLUICE_FERRY_CUT_S="$seconds" "$build/tests/integration_tests" \
  "a link cut under load holds the backlog on disk and drains it in order" 2>&1 |
  grep -v '^\[20' | grep -E 'ferry cut|passed|failed|FAILED|with expansion|==' || true
test "${PIPESTATUS[0]}" -eq 0
