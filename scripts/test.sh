#!/usr/bin/env bash
# Installs dependencies, builds buoni with warnings as errors, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUONI_WERROR=ON >/dev/null
cmake --build build
ctest --test-dir build --output-on-failure -j2
