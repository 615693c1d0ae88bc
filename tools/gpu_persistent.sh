#!/usr/bin/env bash
# One call on the GPU machine for the persistent decode kernel (backend/cuda/decode_persistent.cuh):
# builds test_cuda_engine_w4 and bench_cuda_decode_step for sm_90a with nvcc in parallel with the
# random transformers test models, runs the engine suite (every decode chain against the CPU's
# 4-bit model, the persistent kernel among them), then times the Llama-3-8B-shape W4A16 decode step
# with the persistent kernel and with the kernel chain it replaces (f16 LM head, then a 4-bit one).
# Full outputs in $OUT. Carry .device/carry:
#   run(command="tools/gpu_persistent.sh", carry=[".device/carry"])
# Then tools/probe_stream_ring.cu: a Llama-3-8B step's weight stream through a copy-engine ring
# across grid barriers, alone (PROBE=tools/probe_grid_barrier.cu runs that probe instead).
# PREBUILT=dir (carried) takes the three binaries from there instead of building them (device
# time is scarce; about 110 s instead of 300). Built here with the flags below, e.g. for .device/pbin:
#   f="-O3 -std=c++20 -gencode=arch=compute_90a,code=sm_90a -diag-suppress=20012,20011,20014,20015
#      -I include -I tests -I bench -isystem /usr/include/eigen3"
#   nvcc $f -DTURBINE_TEST_DATA_DIR='"unused"' -DTURBINE_DEFAULT_MODEL_DIR='"unused"' tests/cuda/engine_w4.cu \
#     tests/test_main.cpp -lcublas -lcublasLt -o .device/pbin/t_engine_w4
#   nvcc $f bench/cuda_decode_step.cu -lcublas -lcublasLt -o .device/pbin/bench_step
#   nvcc -O3 -std=c++20 -arch=sm_90a -I include tools/probe_stream_ring.cu -o .device/pbin/probe
#   run(command="PREBUILT=.device/pbin tools/gpu_persistent.sh", carry=[".device/carry", ".device/pbin"])
# SKIP_TESTS=1 skips the suite; LABELS overrides the bench's configurations ("|"-separated prefixes).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. tools/gpu_env.sh
start_nvcc_session
flags=(-O3 -std=c++20 -gencode=arch=compute_90a,code=sm_90a -diag-suppress=20012,20011,20014,20015
       -I include -I tests -I bench -isystem /tmp/deps/include/eigen3 -isystem /tmp/deps/include)
defs=("-DTURBINE_TEST_DATA_DIR=\"$PWD/tests/data\"" '-DTURBINE_DEFAULT_MODEL_DIR="unused"')
p1= p2= p3= p4=
if [ -z "${SKIP_TESTS:-}" ]; then make_gpu_test_models /tmp/gpu_models "$out/models.log" & p2=$!; fi
if [ -n "${PREBUILT:-}" ]; then  # binaries built on the development machine (see above), carried in PREBUILT
  for b in t_engine_w4 bench_step probe; do cp "$PREBUILT/$b" /tmp/$b; done
  echo "prebuilt binaries: build rc 0" | tee "$out/build_engine_w4.log" "$out/build_bench.log" >"$out/build_probe.log"
  p1=$p2
else
  if [ -n "$p2" ]; then
    ( nvcc "${flags[@]}" "${defs[@]}" tests/cuda/engine_w4.cu tests/test_main.cpp -lcublas -lcublasLt -o /tmp/t_engine_w4 \
        >"$out/build_engine_w4.log" 2>&1; echo "engine_w4: build rc $?" >>"$out/build_engine_w4.log" ) & p1=$!
  fi
  ( nvcc "${flags[@]}" -Xptxas -v bench/cuda_decode_step.cu -lcublas -lcublasLt -o /tmp/bench_step \
      >"$out/build_bench.log" 2>&1; echo "bench: build rc $?" >>"$out/build_bench.log" ) & p3=$!
  ( nvcc -O3 -std=c++20 -gencode=arch=compute_90a,code=sm_90a -I include "${PROBE:-tools/probe_stream_ring.cu}" -o /tmp/probe \
      >"$out/build_probe.log" 2>&1; echo "probe: build rc $?" >>"$out/build_probe.log" ) & p4=$!
fi
if [ -n "$p1" ]; then
  wait $p1 $p2
  tail -n1 "$out/build_engine_w4.log"
  say "engine built"
  TURBINE_GPU_TEST_MODELS=/tmp/gpu_models timeout 240 /tmp/t_engine_w4 >"$out/tests_engine.txt" 2>&1
  echo "engine suite rc $?"
  grep -E "persistent|ERROR|FAIL|test cases|assertions" "$out/tests_engine.txt" | head -40
  say "engine_w4 suite done"
fi
wait $p4 2>/dev/null
tail -n1 "$out/build_probe.log"
timeout 150 /tmp/probe >"$out/probe.txt" 2>&1
echo "probe rc $?"
cat "$out/probe.txt"
wait $p3 2>/dev/null
tail -n1 "$out/build_bench.log"
grep -A2 "persistent_decode_kernel" "$out/build_bench.log" | grep -E "registers|spill" | head -4
labels="${LABELS:-persistent kernel|kernel chain}"
for which in llama3-w4 llama3-w4-head; do
  timeout 200 /tmp/bench_step "$which" "$labels" >"$out/bench_$which.txt" 2>&1
  echo "bench $which rc $?"
  grep -vE "^\s*$" "$out/bench_$which.txt" | head -30
  say "bench $which done"
done
