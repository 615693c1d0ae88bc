#!/usr/bin/env bash
# One call on the GPU machine for tools/probe_w4_ring_gemv.cu (the copy-engine ring W4 GEMV beside
# gemv_w4 / gemm_w4 and cuBLAS fp16), at 1, 4 and 16 tokens. Built on the development machine:
#   nvcc -O3 -std=c++20 -gencode=arch=compute_90a,code=sm_90a -I include -I bench \
#     tools/probe_w4_ring_gemv.cu -lcublas -lcublasLt -o .device/pbin/probe_ring
#   run(command="tools/gpu_ring_probe.sh", carry=[".device/pbin"])
# TOKENS overrides the token counts ("1 4 16").
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. tools/gpu_env.sh
out="${OUT:-/tmp/gpu_out}"
mkdir -p "$out"
nvidia-smi -L
for t in ${TOKENS:-1 4 16}; do
  timeout 180 .device/pbin/probe_ring "$t" >"$out/ring_t$t.txt" 2>&1
  echo "tokens $t rc $?"
  grep -v "^benchmark seed" "$out/ring_t$t.txt"
done
