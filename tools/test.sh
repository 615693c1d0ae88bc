#!/usr/bin/env bash
# The test command: installs what is missing, fetches the default model, builds everything and runs
# every test. Ends with ctest's summary.
#   tools/test.sh            (BUILD_DIR=build by default)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
build="${BUILD_DIR:-build}"
tools/install_deps.sh
tools/fetch_model.sh
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j"$(nproc)"
# Serially: the engine tests use every core themselves.
ctest --test-dir "$build" --output-on-failure
