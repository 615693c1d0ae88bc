#!/usr/bin/env bash
# The run command: builds the turbine CLI if needed and starts a chat with the default model
# (SmolLM2-135M-Instruct), on the GPU when one is present and CUDA is built, else on the CPU.
# Needs a terminal (it reads your messages from standard input).
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
# --device auto (the default) runs on the GPU when this build has CUDA (nvcc was found) and a GPU
# is present, else on the CPU.
exec "$build/examples/turbine" chat "$@"
