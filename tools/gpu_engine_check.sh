#!/usr/bin/env bash
# On the GPU machine: build the CUDA tests, the CLI and benchmarks, and run the engine checks.
# The default model does not fit one transfer, so it travels in two halves (.device/p0, .device/p1):
#   stage0: keeps the first half in /tmp and builds;  main: joins the halves and runs everything.
set -uo pipefail
mode="${1:-main}"
out="${OUT:-/tmp/out}"
mkdir -p "$out"
model=.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
if [ "$mode" = stage0 ]; then
  cp .device/p0/part /tmp/smol.part0
  cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DTURBINE_ENABLE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a \
    -DTURBINE_BUILD_BENCH=ON >"$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
  cmake --build build-gpu -j16 --target ${TARGETS:-test_cuda_engine} 2>&1 | tee "$out/build.log" | grep -E "error|warning: v" | head -40
  exit "${PIPESTATUS[0]}"
fi
if [ -f /tmp/smol.part0 ] && [ -f .device/p1/part ]; then
  mkdir -p .cache/models && cat /tmp/smol.part0 .device/p1/part >"$model"
  echo "$(cat tools/default_model.sha256)  $model" | sha256sum --check --quiet && echo "default model assembled"
fi
cmake --build build-gpu -j16 --target ${TARGETS:-test_cuda_engine} >"$out/build2.log" 2>&1 || { grep -E "error" "$out/build2.log" | head; exit 1; }
if [ ! -d /tmp/gpu_models ]; then  # random-init models with head_dim 64 and a 256-token prompt
  TINY_OUT=/tmp/gpu_models TINY_PROMPT=256 \
    TINY_SIZES='{"vocab_size": 512, "hidden_size": 256, "intermediate_size": 512, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64}' \
    python3 tools/make_tiny_models.py >"$out/make_models.log" 2>&1 || tail -20 "$out/make_models.log"
fi
export TURBINE_GPU_TEST_MODELS=/tmp/gpu_models
for t in ${RUN:-test_cuda_engine}; do
  echo "== $t"
  ./build-gpu/tests/$t 2>&1 | tee "$out/$t.log" | grep -E "MESSAGE|relative error|ERROR|FAILED|skipped|test cases|cpu:" | head -60
done
