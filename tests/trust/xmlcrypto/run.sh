#!/usr/bin/env bash
# Installs xml-crypto (npm ci, pinned by package-lock.json) into WORKDIR and runs verify.js.
#   run.sh WORKDIR CA_BUNDLE FILE...
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$1"; shift
mkdir -p "$work"
if [ ! -d "$work/node_modules/xml-crypto" ] || ! cmp -s "$here/package-lock.json" "$work/package-lock.json"; then
  cp "$here/package.json" "$here/package-lock.json" "$work/"
  (cd "$work" && npm ci --no-audit --no-fund --loglevel=error)
fi
NODE_PATH="$work/node_modules" exec node "$here/verify.js" "$@"
