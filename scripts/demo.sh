#!/usr/bin/env bash
# Installs dependencies, builds buoni and runs the demo on ./data: a programme,
# two shops, five cards, redemptions (a retry, a decline), then an audit.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --target buoni >/dev/null
./build/tools/buoni --data ./data demo
