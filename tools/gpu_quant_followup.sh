#!/usr/bin/env bash
# On a fresh GPU machine, one call (about 8 minutes): builds the quantization benchmarks and the CLI
# (sm_90a), then
#   gemm_w4's staged variants at 16/32/64 tokens on the four Llama-3-8B shapes (to choose w4s_pick),
#   decode attention over f16 / int8 / int4 KV caches at batch 16 and 64 (GB/s on the cache bytes),
#   `turbine bench throughput --random-shape llama3-8b` with --kv f16 / int8 / int4 in the same cache
#   budget (the GPU side of run_cuda_kv.cu).
# Knobs: SKIP_GEMM=1, SKIP_ATTN=1 (their benchmarks are then not built), SKIP_CLI=1, KVS="f16 int8"
# (the throughput rows), AWQ_TEST=1 (also build and run test_cuda_awq_search first).
# Carry .device/carry. JSON and logs under $OUT; a short table last.
source "$(dirname "${BASH_SOURCE[0]}")/gpu_common.sh"
first=()
[ "${AWQ_TEST:-0}" = 1 ] && first+=(test_cuda_awq_search)
[ "${SKIP_GEMM:-0}" = 1 ] || first+=(bench_cuda_kernels)
[ "${SKIP_ATTN:-0}" = 1 ] || first+=(bench_cuda_attention)
if [ ${#first[@]} -gt 0 ]; then
  cmake --build "$build" -j"$(nproc)" --target "${first[@]}" >"$out/build_first.log" 2>&1 \
    || { grep -E "error" "$out/build_first.log" | head -20; }
  say "built ${first[*]}"
fi
if [ "${AWQ_TEST:-0}" = 1 ]; then
  timeout 120 "$build/tests/test_cuda_awq_search" >"$out/test_cuda_awq_search.log" 2>&1
  say "test_cuda_awq_search: rc $? $(grep -E "test cases" "$out/test_cuda_awq_search.log")"
  grep -E "intermediate|ERROR|FAILED" "$out/test_cuda_awq_search.log" | head -12
fi
# the CLI compiles while the kernels are timed (the timings are CUDA events on the GPU)
cli_build=
if [ "${SKIP_CLI:-0}" != 1 ]; then
  cmake --build "$build" -j"$(( $(nproc) - 2 ))" --target turbine_cli >"$out/build_cli.log" 2>&1 &
  cli_build=$!
fi
bench() {  # name, seconds, binary, filter
  timeout "$2" "$3" --benchmark_filter="$4" --benchmark_min_time=0.05s \
    --benchmark_out="$out/$1.json" --benchmark_out_format=json >"$out/$1.log" 2>&1
  say "$1: rc $?"
}
[ "${SKIP_GEMM:-0}" = 1 ] || bench gemm_w4s "${GEMM_S:-150}" "$build/bench/bench_cuda_kernels" \
  'gemm_w4_variant/(m1_t2_w1_s4|m2_t2_w1_s4|default_mc2|m2_t2_w2_s4|m2_t4_w1_s3|m1_t8_w1_s4|m2_t4_w2_s4)/.*/tokens:(16|32|64)(/|$)'
[ "${SKIP_ATTN:-0}" = 1 ] || bench attn_kv "${ATTN_S:-110}" "$build/bench/bench_cuda_attention" 'ceiling|decode_kv/llama3_8b/f16(_int8|_int4)?/(16|64)/(4096|8192)/'
if [ -n "$cli_build" ]; then
  wait "$cli_build"
  say "cli build: rc $?"
  grep -E "error" "$out/build_cli.log" | head -10
fi
cli="$build/examples/turbine"
[ -x "$cli" ] || KVS=""
for kv in ${KVS-f16 int8 int4}; do
  kvflag=()
  [ "$kv" != f16 ] && kvflag=(--kv "$kv")
  timeout "${TP_S:-70}" "$cli" bench throughput --random-shape llama3-8b --device cuda --dtype f16 "${kvflag[@]}" \
    --num-prompts "${TP_PROMPTS:-400}" --max-concurrent 256 --max-prefill-tokens 4096 --ctx-size 4096 --cache-gib 4 \
    >"$out/throughput_$kv.log" 2>&1
  say "throughput kv $kv: rc $? $(grep -E "tokens/s" "$out/throughput_$kv.log" | head -2 | tr '\n' ' ' | cut -c1-160)"
done
python3 - "$out" <<'PY'
import json, sys, os
out = sys.argv[1]
for name in ("gemm_w4s", "attn_kv"):
    p = os.path.join(out, name + ".json")
    try:
        rows = json.load(open(p))["benchmarks"]
    except Exception as e:
        print(name, "no JSON", e); continue
    for r in rows:
        keys = [k for k in ("speedup_vs_cublas_f16", "GB/s", "GBps", "frac_copy", "frac_read_ceiling") if k in r]
        print(f"{r['name'][:72]:72s} {r.get('real_time', 0):9.2f} " + " ".join(f"{k}={r[k]:.3g}" for k in keys))
PY
for kv in ${KVS-f16 int8 int4}; do echo "== throughput $kv"; tail -6 "$out/throughput_$kv.log"; done
