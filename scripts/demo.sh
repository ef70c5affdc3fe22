#!/usr/bin/env bash
# Installs dependencies, builds buoni and runs the demo on ./data: a demo
# programme, two shops, 20 cards (./data/demo-cards.pdf), a short scripted tour
# and an audit; then it serves the HTTP API on 127.0.0.1:8080 and prints a shop
# key, a card token and curl lines to try. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --target buoni >/dev/null
exec ./build/tools/buoni --data ./data demo "$@"
