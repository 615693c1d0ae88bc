#!/usr/bin/env bash
# On the GPU machine, after tools/gpu_session.sh build: the quantization benchmarks of issue #4 in
# one call, JSON under $OUT and a compact table last.
#   bench_cuda_kernels   W4 GEMV variants (1-8 tokens) and gemm_w4 vs cuBLAS fp16 (16-256 tokens)
#   bench_cuda_attention decode attention over f16 / int8 / int4 KV caches (GB/s on cache bytes)
#   bench_cuda_decode_step w4   Llama-3-8B / SmolLM2 W4A16 decode step, unfused and fused chains
# Knobs: GEMV_FILTER, GEMM_FILTER, ATTN_FILTER (Google Benchmark regexes), GEMV_S, GEMM_S, ATTN_S,
# STEP_S (time limits), SKIP_ATTN=1, SKIP_STEP=1.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
build=${BUILD:-build-gpu}
out="${OUT:-/tmp/gpu_out}"
mkdir -p "$out"
. "$here/tools/gpu_env.sh"
bench() {  # name, seconds, binary, filter
  local name=$1 limit=$2 bin=$3 filter=$4
  [ -x "$bin" ] || { echo "$name: $bin not built"; return; }
  timeout "$limit" "$bin" --benchmark_filter="$filter" --benchmark_min_time=0.05s \
    --benchmark_out="$out/$name.json" --benchmark_out_format=json >"$out/$name.log" 2>&1
  echo "$name: rc $?"
}
bench gemv_w4 "${GEMV_S:-100}" "$build/bench/bench_cuda_kernels" "${GEMV_FILTER:-ceiling|gemv_w4_variant/.*/tokens:(1|8)(/|$)|gemv/llama3_8b_(o|qkv|down)_[0-9x]+/tokens:1(/|$)}"
bench gemm_w4 "${GEMM_S:-120}" "$build/bench/bench_cuda_kernels" "${GEMM_FILTER:-ceiling|gemm_w4}"
[ "${SKIP_ATTN:-0}" = 1 ] || bench attn_kv "${ATTN_S:-90}" "$build/bench/bench_cuda_attention" "${ATTN_FILTER:-ceiling|decode_kv/}"
if [ "${SKIP_STEP:-0}" != 1 ] && [ -x "$build/bench/bench_cuda_decode_step" ]; then
  timeout "${STEP_S:-90}" "$build/bench/bench_cuda_decode_step" w4 >"$out/decode_step_w4.log" 2>&1
  echo "decode_step w4: rc $?"
fi
grep -h "ceilings:" "$out/gemv_w4.log" 2>/dev/null | head -2
python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
def rows(name):
    try: return json.load(open(os.path.join(out, name + ".json")))["benchmarks"]
    except Exception as e: print(f"{name}: no JSON ({e})"); return []
def val(b, *keys):
    for k in keys:
        if k in b: return b[k]
    return float("nan")
for name in ("gemv_w4", "gemm_w4", "attn_kv"):
    print(f"== {name}")
    for b in rows(name):
        n = b["name"].replace("/manual_time", "").replace("/real_time", "")
        us = val(b, "median_us")
        if us != us: us = b.get("real_time", float("nan")) * (1e-3 if b.get("time_unit") == "ns" else 1)
        extra = []
        for k in ("GBps", "GB/s", "frac_copy_ceiling", "frac_copy", "TFLOPs", "TFLOP/s", "speedup_vs_cublas_f16"):
            if k in b: extra.append(f"{k} {b[k]:.3g}")
        print(f"{n[:78]:78s} {us:9.2f} us  " + "  ".join(extra))
PY
[ -f "$out/decode_step_w4.log" ] && grep -vE "^\s*$" "$out/decode_step_w4.log" | tail -25
