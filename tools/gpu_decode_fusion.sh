#!/usr/bin/env bash
# On the GPU machine: the fused decode step's checks and benchmark, from binaries built elsewhere
# (sm_90a, carried as build-fuse/carry0/bin0.tar.xz: test_cuda_gemv_fused, test_cuda_gemv,
# bench_cuda_decode_step and bench_decode_head, the same benchmark built against the engine before
# the folds; build-fuse/carry1/bin1.tar.xz: test_cuda_engine, test_cuda_attention_decode; each call
# carries one, next to one half of the default model). Logs go to $OUT; a short table last.
#   bench: the benchmarks alone.
#   stage0: keeps the default model's first half (.device/p0) in /tmp, runs the GEMV suites and the
#           benchmarks;   main: joins the halves (.device/p1), makes the tiny transformers models, runs
#           the engine test, the attention suite and a memcheck pass over the fused GEMV suite.
# The binaries have the repository path /work/main compiled in (default model, test data).
set -uo pipefail
mode="${1:-stage0}"
out="${OUT:-/tmp/out}"
mkdir -p "$out" /tmp/fuse
t0=$(date +%s)
left() { echo $((${LIMIT:-400} - ($(date +%s) - t0))); }
cap() { local l=$(($(left) - 5)); [ "$l" -lt 5 ] && l=5; [ "$l" -gt "$1" ] && l=$1; echo "$l"; }  # seconds for a step
for f in build-fuse/carry*/*.tar.xz; do [ -f "$f" ] && tar -xJf "$f" -C /tmp/fuse; done
ls /tmp/fuse | tr '\n' ' '; echo
export LD_LIBRARY_PATH="/tmp/fuse:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
probe=$(ls /tmp/fuse/test_cuda_* | head -1)
if ldd "$probe" | grep -q "not found"; then  # the CUDA libraries elsewhere (pip wheels)
  for lib in libcudart.so.13 libcublasLt.so.13 libcublas.so.13; do
    p=$(find / -name "$lib" -not -path "/proc/*" 2>/dev/null | head -1)
    [ -n "$p" ] && export LD_LIBRARY_PATH="$(dirname "$p"):$LD_LIBRARY_PATH"
  done
  ldd "$probe" | grep "not found"
fi
model_dir=/work/main/.cache/models
model=$model_dir/SmolLM2-135M-Instruct.Q4_1.gguf
run() {  # name, seconds, command...
  local name=$1 limit=$2
  shift 2
  local t=$(date +%s)
  timeout "$limit" "$@" >"$out/$name.log" 2>&1
  local rc=$?
  echo "$name: rc $rc in $(($(date +%s) - t)) s"
  return $rc
}
summary() {  # a suite's failures and worst errors
  grep -E "FAIL|ERROR|error:|NON-FINITE" "$out/$1.log" | head -12
  grep -E "^\[doctest\] (test cases|assertions)" "$out/$1.log"
}

if [ "$mode" = stage0 ] || [ "$mode" = bench ]; then
  [ -f .device/p0/part ] && cp .device/p0/part /tmp/smol.part0
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw \
    --format=csv,noheader
  [ "$mode" = bench ] || for s in gemv_fused gemv; do
    run "test_$s" 90 /tmp/fuse/test_cuda_$s
    summary "test_$s"
  done
  [ "$mode" = bench ] || echo "worst relative errors (tol f16 1e-3, bf16 1e-2):"
  [ "$mode" = bench ] || awk '/rel err/ { p = ($0 ~ / bf16 /) ? "bf16" : "f16"; for (i = 1; i <= NF; ++i) if ($i == "err") e = $(i + 1);
         k = FILENAME ":" p; if (e == "nan" || e == "-nan") bad[k] = 1; else if (!(k in w) || e + 0 > w[k] + 0) w[k] = e }
       END { for (k in w) printf "  %-40s %s%s\n", k, w[k], (k in bad) ? " NaN!" : "" }' \
    "$out"/test_gemv_fused.log "$out"/test_gemv.log | sed "s|$out/||" | sort
  run bench_head "$(cap 120)" /tmp/fuse/bench_decode_head
  run bench "$(cap 400)" /tmp/fuse/bench_cuda_decode_step
  cat "$out/bench_head.log" "$out/bench.log" | grep -vE "^\s*$" | grep -v "^device" | head -90
  head -1 "$out/bench.log"
  exit 0
fi

# main
if [ -f /tmp/smol.part0 ] && [ -f .device/p1/part ]; then
  mkdir -p "$model_dir" && cat /tmp/smol.part0 .device/p1/part >"$model"
  echo "$(cat tools/default_model.sha256)  $model" | sha256sum --check --quiet && echo "default model assembled"
fi
if [ ! -d /tmp/gpu_models ]; then  # random-init models with head_dim 64 and a 256-token prompt
  TINY_OUT=/tmp/gpu_models TINY_PROMPT=256 \
    TINY_SIZES='{"vocab_size": 512, "hidden_size": 256, "intermediate_size": 512, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64}' \
    python3 tools/make_tiny_models.py >"$out/make_models.log" 2>&1 || tail -20 "$out/make_models.log"
fi
export TURBINE_GPU_TEST_MODELS=/tmp/gpu_models
run test_engine 240 /tmp/fuse/test_cuda_engine
grep -E "MESSAGE|relative error|ERROR|FAILED|skipped|test cases|assertions|cpu:" "$out/test_engine.log" | head -60
run test_attention_decode "$(cap 150)" /tmp/fuse/test_cuda_attention_decode
summary test_attention_decode
grep -E "rel err" "$out/test_attention_decode.log" | awk '{ for (i = 1; i <= NF; ++i) if ($i == "err") print $(i + 1) }' |
  sort -g | tail -1 | sed 's/^/  attention_decode worst: /'
if command -v compute-sanitizer >/dev/null && [ -x /tmp/fuse/test_cuda_gemv_fused ] && [ "$(left)" -gt 60 ]; then
  run sanitize "$(cap 400)" compute-sanitizer --tool memcheck --error-exitcode 9 /tmp/fuse/test_cuda_gemv_fused \
    -tc="*rope*,*back to back*"
  grep -E "ERROR SUMMARY|test cases" "$out/sanitize.log"
fi
