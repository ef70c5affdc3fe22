#!/usr/bin/env bash
# Installs what buoni needs to build, test and run, from Debian 12's packages,
# and the extra packages named as arguments (CI's clang: scripts/ci-lib.sh),
# then the npm packages of package-lock.json (npm ci) when node_modules/ is
# missing or older than the lock file. Idempotent and quiet when everything is
# already there. Run as root (for apt-get).
#   bash scripts/install-deps.sh [extra-package...]
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config   # toolchain
  libsodium-dev                                  # Ed25519, BLAKE2b, CSPRNG
  libssl-dev                                     # OpenSSL (TLS for the server)
  librocksdb-dev                                 # storage
  libboost1.81-dev libboost-json1.81-dev         # Beast/Asio headers, Boost.JSON
  libcli11-dev                                   # command-line parsing
  doctest-dev                                    # tests
  libqrencode-dev libcairo2-dev fonts-dejavu-core zbar-tools poppler-utils  # cards; QR decoding tests
  libmagickcore-6.q16-6-extra                    # lets zbarimg read the SVG cards in tests
  postgresql                                     # the benchmark's baseline (bench/run.sh, bench_smoke)
  chromium chromium-driver ffmpeg nodejs         # the till page's browser test (tests/browser/)
  "$@"
)
# npm: Debian's package, unless the installed nodejs brings its own (NodeSource's
# nodejs does, and conflicts with Debian's npm).
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
install_debian_packages() {
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing ${missing[*]}; run this script as root" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}" >&2
  # bench/run.sh starts its own PostgreSQL cluster in a temp dir; Debian's
  # package would otherwise create and start a default one.
  mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false  # buoni: bench/run.sh runs its own cluster" \
    >/etc/postgresql-common/createcluster.d/buoni.conf
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The npm packages of package-lock.json (jsQR, embedded in the binary for
# /pos; playwright-core, for the browser test) into node_modules/, when it is
# missing or older than the lock file.
install_npm_packages() {
  local root
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  local installed="$root/node_modules/.package-lock.json"
  if [ -f "$installed" ] && [ ! "$root/package-lock.json" -nt "$installed" ]; then
    return 0
  fi
  echo "install-deps: npm ci (package-lock.json)" >&2
  (cd "$root" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
}

install_debian_packages
install_npm_packages
