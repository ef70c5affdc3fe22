#!/usr/bin/env bash
# Installs what buoni needs to build, test and run, from Debian 12's packages,
# and the extra packages named as arguments (CI's clang: scripts/ci-lib.sh).
# Idempotent and quiet when everything is already there. Run as root.
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
  "$@"
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

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
