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
# Without a GPU, CUDA code is compiled to PTX only (a compile check: nothing here could run it).
ptx=ON
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then ptx=OFF; fi
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DTURBINE_CUDA_PTX_ONLY=$ptx
cmake --build "$build" -j"$(nproc)"
# Two at a time; the tests that use every core themselves are marked RUN_SERIAL (tests/CMakeLists.txt).
ctest --test-dir "$build" --output-on-failure -j"$(nproc)"
