#!/usr/bin/env bash
# Installs the Debian 12 packages Sluice needs to build, test, run and benchmark.
# Usage: deploy/install-deps.sh            (as root, or with sudo available)
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config clang clang-format clang-tidy
  clang-16 libclang-rt-16-dev
  # libraries
  libboost1.81-all-dev libboost-json1.81-dev libssl-dev libxml2-dev libxslt1-dev libxmlsec1-dev
  liblmdb-dev lmdb-utils libzmq3-dev cppzmq-dev libjemalloc-dev
  libtomlplusplus-dev libcli11-dev libspdlog-dev libfmt-dev catch2 libsystemd-dev
  # tools used by scripts, tests and the demo
  openssl xmlsec1 libxml2-utils xsltproc curl ca-certificates python3 procps
  file  # CPack's dbgsym step (tests/package/deb-test.sh) tells binaries apart with it
  prometheus  # promtool, which checks the /metrics exposition in a test
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

# Node.js (with its npm) comes with the machine image; it is only used by the independent
# XML-DSig check in the tests and by the RabbitMQ comparison benchmark.
command -v node >/dev/null || echo "install-deps: note: node not found; the xml-crypto test will be skipped" >&2
