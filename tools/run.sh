#!/usr/bin/env bash
# The run command: builds the turbine CLI if needed and starts a chat with the default model
# (SmolLM2-135M-Instruct), on the GPU when one is present and CUDA is built, else on the CPU.
#   tools/run.sh [extra chat flags]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
build="${BUILD_DIR:-build}"
tools/install_deps.sh >&2
tools/fetch_model.sh >&2
if [ ! -x "$build/examples/turbine" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >&2
  cmake --build "$build" -j"$(nproc)" --target turbine_cli >&2
fi
device=cpu
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "note: a GPU is present but turbine's CUDA engine is not built yet; chatting on the CPU" >&2
fi
exec "$build/examples/turbine" chat --device "$device" "$@"
