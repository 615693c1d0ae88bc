#!/usr/bin/env bash
# One lean call on the GPU machine for the 4-bit kernels (no CMake: direct nvcc, about 2 minutes of
# building): builds test_cuda_gemm_w4, test_cuda_engine_w4 and tools/probe_w4_gemm_knockouts.cu for
# sm_90a in parallel with the random transformers test models, runs the two suites and then the
# probe, and leaves the full outputs in $OUT (tests_gemm.txt, tests_engine.txt, probe.txt). Prints
# the suites' summaries and the probe's first lines. Carry .device/carry (tools/gpu_split_model.sh):
#   run(command="tools/gpu_w4_quick.sh", carry=[".device/carry"])
# PROBE_SECONDS bounds the probe (default 120; 0 skips it). SKIP_GEMM=1 skips the gemm_w4 suite,
# SKIP_ENGINE=1 the engine suite and its test models; ENGINE_CASES passes a doctest -tc filter to it.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. tools/gpu_env.sh
start_nvcc_session
flags=(-O3 -std=c++20 -gencode=arch=compute_90a,code=sm_90a -diag-suppress=20012,20011,20014,20015
       -I include -I tests -isystem /tmp/deps/include/eigen3 -isystem /tmp/deps/include)
defs=("-DTURBINE_TEST_DATA_DIR=\"$PWD/tests/data\"" '-DTURBINE_DEFAULT_MODEL_DIR="unused"')
suite() {
  nvcc "${flags[@]}" "${defs[@]}" "tests/cuda/$1.cu" tests/test_main.cpp -lcublas -lcublasLt -o "/tmp/t_$1" \
    >"$out/build_$1.log" 2>&1
  echo "$1: build rc $?" >>"$out/build_$1.log"
}
p1=
[ -z "${SKIP_GEMM:-}" ] && { suite gemm_w4 & p1=$!; }
p2= p3=
if [ -z "${SKIP_ENGINE:-}" ]; then
  suite engine_w4 & p2=$!
  make_gpu_test_models /tmp/gpu_models "$out/models.log" & p3=$!
fi
p4=
[ "${PROBE_SECONDS:-120}" != 0 ] && {
  nvcc "${flags[@]}" tools/probe_w4_gemm_knockouts.cu -lcublas -o /tmp/probe_w4 >"$out/build_probe.log" 2>&1 & p4=$!
}
if [ -n "$p1" ]; then
  wait $p1
  tail -n1 "$out/build_gemm_w4.log"
  timeout 150 /tmp/t_gemm_w4 >"$out/tests_gemm.txt" 2>&1
  grep -E "ERROR|FAIL|test cases|assertions" "$out/tests_gemm.txt"
  say "gemm_w4 suite done"
fi
if [ -n "$p2" ]; then
  wait $p2 $p3
  tail -n1 "$out/build_engine_w4.log"
  TURBINE_GPU_TEST_MODELS=/tmp/gpu_models timeout 200 /tmp/t_engine_w4 ${ENGINE_CASES:+-tc="$ENGINE_CASES"} \
    >"$out/tests_engine.txt" 2>&1
  grep -E "/[0-9]+: relative|ERROR|FAIL|test cases|assertions" "$out/tests_engine.txt"
  say "engine_w4 suite done"
fi
if [ -n "$p4" ]; then
  wait $p4 || { tail -n5 "$out/build_probe.log"; exit 1; }
  timeout "${PROBE_SECONDS:-120}" /tmp/probe_w4 >"$out/probe.txt" 2>&1
  head -n2 "$out/probe.txt"
  say "probe done ($(($(wc -l <"$out/probe.txt") - 3)) rows)"
fi
