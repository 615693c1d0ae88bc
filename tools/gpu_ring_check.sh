#!/usr/bin/env bash
# One call on the GPU machine for the W4 GEMV's ring kernel (gemv_w4_ring.cuh): test_cuda_gemv_w4
# (every launch against the CPU, the ring's epilogues and limits), test_cuda_engine_w4 (every decode
# chain of the random transformers models against the CPU's 4-bit model, the default now taking the
# ring where W is large), then the Llama-3-8B-shape W4A16 decode step with the chain as it now is
# and with every W4 GEMV on the kStream kernel. Binaries built on the development machine into
# .device/pbin (flags as in tools/gpu_persistent.sh: t_gemv_w4, t_engine_w4, bench_step):
#   run(command="tools/gpu_ring_check.sh", carry=[".device/pbin"])
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. tools/gpu_env.sh
out="${OUT:-/tmp/gpu_out}"
mkdir -p "$out"
t0=$(date +%s)
say() { echo "[$(($(date +%s) - t0)) s] $*"; }
nvidia-smi -L
make_gpu_test_models /tmp/gpu_models "$out/models.log" & models=$!
timeout 200 .device/pbin/t_gemv_w4 >"$out/t_gemv_w4.txt" 2>&1
echo "gemv_w4 suite rc $?"
grep -E "ERROR|FAIL|skip|test cases|assertions" "$out/t_gemv_w4.txt" | head -20
say "gemv_w4 done"
wait $models
TURBINE_GPU_TEST_MODELS=/tmp/gpu_models timeout 200 .device/pbin/t_engine_w4 >"$out/t_engine_w4.txt" 2>&1
echo "engine_w4 suite rc $?"
grep -E "ERROR|FAIL|test cases|assertions" "$out/t_engine_w4.txt" | head -20
say "engine_w4 done"
for which in llama3-w4-head llama3-w4; do
  timeout 150 .device/pbin/bench_step "$which" "${LABELS:-kernel chain}" >"$out/bench_$which.txt" 2>&1
  echo "bench $which rc $?"
  grep -vE "^\s*$" "$out/bench_$which.txt" | head -30
  say "bench $which done"
done
