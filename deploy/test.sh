#!/usr/bin/env bash
# Installs what the tests need, builds, and runs every test (CTest, Catch2).
#   ./deploy/test.sh                 default build (build/)
#   ./deploy/test.sh asan            AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/)
#   ./deploy/test.sh tsan            ThreadSanitizer (build-tsan/)
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-default}"
./deploy/install-deps.sh
cmake --preset "$preset" > /dev/null
cmake --build --preset "$preset"
ctest --preset "$preset"
