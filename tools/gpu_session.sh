#!/usr/bin/env bash
# On the GPU machine, in two back-to-back device calls (the machine stays warm for 30 s only):
#   tools/gpu_session.sh build   configure + build every CUDA test, the CLI and the CUDA benchmarks
#                                (sm_90a, all cores), run the kernel and engine suites; keeps the
#                                default model's first half (.device/p0) in /tmp
#   tools/gpu_session.sh all     both in one call (without the default model, which needs two calls)
#   tools/gpu_session.sh run     joins the halves (.device/p1), runs the serving test and the serving
#                                throughput benchmarks, turbine serve, the CLI on the default model, the
#                                examples, quantize + the AWQ directory on the GPU, the decode-step
#                                benchmark and the generation grid against transformers (SKIP_SERVING,
#                                SKIP_THROUGHPUT, SKIP_SERVE, SKIP_CLI, SKIP_AWQ, AWQ_FULL_DEVICES, SKIP_STEP_BENCH,
#                                KERNEL_BENCH_FILTER + KERNEL_BENCH_S, ATTN_BENCH_FILTER, RUN_BUDGET_S)
# Carry .device/carry (deps.tar.xz: Eigen, doctest, nlohmann-json, CLI11 headers for machines without
# them) and .device/p0 or .device/p1 (tools/gpu_split_model.sh makes them). Logs go to $OUT/logs.tar.gz;
# a short table is printed last.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
mode="${1:-build}"
out="${OUT:-/tmp/gpu_out}"
logs=/tmp/gpu_logs
mkdir -p "$out" "$logs"
build=build-gpu
t0=$(date +%s)
say() { echo "[$(($(date +%s) - t0)) s] $*"; }
summary=()
record() { summary+=("$(printf '%-34s %s' "$1" "$2")"); }
finish() {
  tar -czf "$out/logs.tar.gz" -C "$logs" . 2>/dev/null
  echo
  echo "== summary ($mode, $(($(date +%s) - t0)) s)"
  printf '%s\n' "${summary[@]}"
}
trap finish EXIT
. "$here/tools/gpu_env.sh"
model_dir="$here/.cache/models"
model="$model_dir/SmolLM2-135M-Instruct.Q4_1.gguf"

# runs a doctest suite with a time limit; records pass/fail and the worst relative error it printed
suite() {  # name, seconds, [args]
  local name=$1 limit=$2
  shift 2
  local bin="$build/tests/$name"
  if [ ! -x "$bin" ]; then record "$name" "NOT BUILT"; return; fi
  timeout "$limit" "$bin" "$@" >"$logs/$name.log" 2>&1
  local rc=$?
  local cases worst
  cases=$(grep -E "^\[doctest\] test cases" "$logs/$name.log" | sed 's/\[doctest\] test cases: *//' | tr -s ' ')
  worst=$(grep -oE "rel(ative)? err(or)?[ =:]+[-0-9.e+naif]+" "$logs/$name.log" | grep -oE "[-0-9.e+naif]+$" | sort -g | tail -1)
  record "$name" "rc $rc  ${cases:-no summary}${worst:+  worst rel err $worst}"
  [ "$rc" -ne 0 ] && grep -E "ERROR|FAILED|error:" "$logs/$name.log" | head -8
}

# the engine against transformers on random-init models made here (no default model needed)
engine_suites() {
  if [ ! -d /tmp/gpu_models ]; then
    make_gpu_test_models /tmp/gpu_models "$logs/make_models.log" || tail -20 "$logs/make_models.log"
  fi
  export TURBINE_GPU_TEST_MODELS=/tmp/gpu_models
  suite test_cuda_engine 200
  grep -E "relative error|MESSAGE|skipped" "$logs/test_cuda_engine.log" | head -30
  suite test_cuda_engine_w4 200
  grep -E "relative error|MESSAGE|skipped" "$logs/test_cuda_engine_w4.log" | head -60  # 3 decode chains x 3 prefills x 6 models
  suite test_cuda_engine_kv 300
  grep -E "relative error|bytes per position|skipped" "$logs/test_cuda_engine_kv.log" | head -40
}

if [ "$mode" = build ] || [ "$mode" = all ]; then
  [ -f .device/p0/part ] && cp .device/p0/part /tmp/smol.part0
  mkdir -p /tmp/deps && tar -xJf .device/carry/deps.tar.xz -C /tmp/deps
  # cpp-httplib for turbine serve and the HTTP tests (tools/gpu_httplib_bundle.sh), where the
  # libraries it links (OpenSSL 3, zlib) are installed
  prefix=/tmp/deps
  if [ -f .device/httplib/httplib.tar.xz ] && ldconfig -p | grep -q "libssl.so.3 " && ldconfig -p | grep -q "libz.so.1 "; then
    mkdir -p /tmp/httplib && tar -xJf .device/httplib/httplib.tar.xz -C /tmp/httplib && prefix="/tmp/deps;/tmp/httplib"
  fi
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,clocks.mem --format=csv,noheader
  gen=()
  command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
  say "configure"
  if ! cmake -S . -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DTURBINE_ENABLE_CUDA=ON \
      -DCMAKE_CUDA_ARCHITECTURES=90a -DTURBINE_NATIVE=OFF -DCMAKE_PREFIX_PATH="$prefix" \
      >"$logs/configure.log" 2>&1; then
    tail -30 "$logs/configure.log"
    record configure FAILED
    exit 1
  fi
  targets=${TARGETS:-$(cmake --build "$build" --target help 2>/dev/null | grep -oE "^(test_cuda_[a-z0-9_]+|bench_cuda_[a-z0-9_]+|turbine_cli|embed_in_app|custom_model|pipeline):" | tr -d : | sort -u | tr '\n' ' ')}
  say "build: $targets"
  cmake --build "$build" -j"$(nproc)" --target $targets -- -k 0 >"$logs/build.log" 2>&1
  rc=$?
  record build "rc $rc ($(($(date +%s) - t0)) s)"
  [ "$rc" -ne 0 ] && grep -E "error|FAILED" "$logs/build.log" | head -30
  for s in ${SUITES:-norm embedding activation rope gemv gemv_fused gemv_w4 gemm gemm_w4 attention_prefill attention_decode kv_quant sampling umbrella awq_search}; do
    suite "test_cuda_$s" 150
  done
  [ "${SKIP_ENGINE_SUITES:-0}" != 1 ] && engine_suites
  [ "$mode" = build ] && exit 0
fi

# run -------------------------------------------------------------------------------------------
if [ -f /tmp/smol.part0 ] && [ -f .device/p1/part ]; then
  mkdir -p "$model_dir" && cat /tmp/smol.part0 .device/p1/part >"$model"
  if echo "$(cat tools/default_model.sha256)  $model" | sha256sum --check --quiet; then say "default model assembled"
  else rm -f "$model"; say "default model: checksum mismatch"; fi
fi
cli="$build/examples/turbine"
# the serving engine on the GPU (paged KV, batching, prefix caching, preemption): needs the default model
if [ -f "$model" ] && [ "${SKIP_SERVING:-0}" != 1 ]; then
  suite test_cuda_engine_serving 300
  grep -E "MESSAGE|differs|skipped" "$logs/test_cuda_engine_serving.log" | head -20
fi
# serving throughput: the default model, then the Llama-3-8B shape (random weights, bf16, 1000 prompts)
if [ -x "$cli" ] && [ -f "$model" ] && [ "${SKIP_THROUGHPUT:-0}" != 1 ]; then
  timeout 120 "$cli" bench throughput "$model" --device cuda --num-prompts 200 --max-concurrent 64 --max-prefill-tokens 2048 \
    >"$logs/throughput_smollm2.log" 2>&1
  record "bench throughput smollm2" "rc $? : $(grep -E "tokens/s" "$logs/throughput_smollm2.log" | head -1 | cut -c1-100)"
  tail -8 "$logs/throughput_smollm2.log"
  timeout "${THROUGHPUT_8B_S:-300}" "$cli" bench throughput --random-shape llama3-8b --device cuda --dtype bf16 --num-prompts 1000 \
    --max-concurrent "${THROUGHPUT_CONCURRENT:-256}" --max-prefill-tokens 4096 --ctx-size 4096 >"$logs/throughput_8b.log" 2>&1
  record "bench throughput llama3-8b" "rc $? : $(grep -E "tokens/s" "$logs/throughput_8b.log" | head -1 | cut -c1-100)"
  tail -8 "$logs/throughput_8b.log"
fi
# the load test at the issue's figure, 256 streaming clients (the CPU engine, this machine's cores)
if [ -x "$build/tests/test_serve_load" ] && [ -f "$model" ]; then
  TURBINE_LOAD_CLIENTS=256 suite test_serve_load 300
  grep -E "MESSAGE" "$logs/test_serve_load.log" | head -4
fi
# turbine serve on the GPU answers an OpenAI chat request (streamed) and reports its KV blocks
if [ -x "$cli" ] && [ -f "$model" ] && [ "${SKIP_SERVE:-0}" != 1 ]; then
  "$cli" serve "$model" --device cuda --port 18123 --quiet --max-concurrent 64 >"$logs/serve_cuda.log" 2>&1 &
  serve_pid=$!
  for _ in $(seq 60); do grep -q listening "$logs/serve_cuda.log" && break; sleep 1; done
  python3 - >"$logs/serve_cuda_client.log" 2>&1 <<'PY'
import json, urllib.request
def post(body):
    req = urllib.request.Request("http://127.0.0.1:18123/v1/chat/completions", json.dumps(body).encode(), {"Content-Type": "application/json"})
    return urllib.request.urlopen(req, timeout=60).read().decode()
r = json.loads(post({"messages": [{"role": "user", "content": "What is the capital of France?"}], "max_tokens": 24, "temperature": 0}))
print("chat:", r["choices"][0]["message"]["content"].replace("\n", " "))
s = post({"messages": [{"role": "user", "content": "Count to five."}], "max_tokens": 16, "stream": True})
print("stream events:", s.count("data: "), "done" if "data: [DONE]" in s else "NO [DONE]")
print("health:", urllib.request.urlopen("http://127.0.0.1:18123/health", timeout=10).read().decode()[:200])
PY
  record "serve --device cuda" "rc $? : $(tr '\n' ' ' <"$logs/serve_cuda_client.log" | cut -c1-110)"
  timeout 120 "$cli" bench serve "$model" --url http://127.0.0.1:18123 --concurrency 64 --num-prompts 200 \
    >"$logs/bench_serve_cuda.log" 2>&1
  record "bench serve (GPU server)" "rc $? : $(grep -E "tokens/s" "$logs/bench_serve_cuda.log" | head -1 | cut -c1-100)"
  tail -6 "$logs/bench_serve_cuda.log"
  kill "$serve_pid" 2>/dev/null; wait "$serve_pid" 2>/dev/null
fi
if [ -x "$cli" ] && [ -f "$model" ] && [ "${SKIP_CLI:-0}" != 1 ]; then
  for dt in f16 bf16; do
    timeout 60 "$cli" generate "$model" --device cuda --dtype $dt -n 24 -p "What is the capital of France?" \
      >"$logs/cli_$dt.log" 2>&1
    record "cli generate $dt" "rc $? : $(tr '\n' ' ' <"$logs/cli_$dt.log" | cut -c1-110)"
  done
fi
# an AWQ directory made here (turbine quantize, the search on the CPUs and on the GPU) runs on the GPU
if [ -x "$cli" ] && [ -f "$model" ] && [ "${SKIP_AWQ:-0}" != 1 ]; then
  for dev in cpu cuda; do
    "$cli" quantize "$model" --device $dev --method awq --calib docs/ARCHITECTURE.md --calib-samples 8 --calib-seqlen 128 \
      -o /tmp/smol_awq_$dev >"$logs/quantize_awq_$dev.log" 2>&1
    record "quantize awq ($dev)" "rc $? : $(grep -E '^quantized' "$logs/quantize_awq_$dev.log" | cut -c1-90)"
  done
  ln -sfn /tmp/smol_awq_cuda /tmp/smol_awq
  # the default calibration size (--calib-samples 64 --calib-seqlen 512; ARCHITECTURE.md gives 8 x 512) on both
  for dev in ${AWQ_FULL_DEVICES-cpu cuda}; do
    "$cli" quantize "$model" --device $dev --method awq --calib docs/ARCHITECTURE.md -o /tmp/smol_awq_full_$dev \
      >"$logs/quantize_awq_full_$dev.log" 2>&1
    record "quantize awq full ($dev)" "rc $? : $(grep -E '^quantized' "$logs/quantize_awq_full_$dev.log" | cut -c1-90)"
  done
  timeout 60 "$cli" generate /tmp/smol_awq --device cuda -n 24 -p "What is the capital of France?" \
    >"$logs/cli_awq_cuda.log" 2>&1
  record "cli generate awq dir on cuda" "rc $? : $(tr '\n' ' ' <"$logs/cli_awq_cuda.log" | cut -c1-90)"
  printf 'What is the capital of France?\n/reset\nWhat is 2+2?\n/exit\n' |
    timeout 60 "$cli" chat /tmp/smol_awq --device cuda -n 24 >"$logs/chat_awq_cuda.log" 2>&1
  record "cli chat awq dir on cuda" "rc $? : $(tr '\n' ' ' <"$logs/chat_awq_cuda.log" | cut -c1-90)"
fi
# the library examples: embed_in_app's model compiled once in its .cu (ExternModel), on the GPU
if [ -f "$model" ]; then
  for ex in "embed_in_app $model --cuda" "pipeline $model 24" "custom_model tests/data/tiny_models/llama_tied"; do
    name=${ex%% *}
    if [ -x "$build/examples/$name" ]; then
      timeout 120 "$build/examples/"$ex >"$logs/example_$name.log" 2>&1
      record "example $name" "rc $? : $(tail -2 "$logs/example_$name.log" | tr '\n' ' ' | cut -c1-100)"
    fi
  done
fi
# per-kernel bandwidth at model shapes (GEMV, GEMM, norms), each with its fraction of the ceiling
if [ -x "$build/bench/bench_cuda_kernels" ] && [ -n "${KERNEL_BENCH_FILTER:-}" ]; then
  timeout "${KERNEL_BENCH_S:-150}" "$build/bench/bench_cuda_kernels" --benchmark_filter="$KERNEL_BENCH_FILTER" --benchmark_min_time=0.05s \
    >"$logs/bench_kernels.log" 2>&1
  record bench_cuda_kernels "rc $?"
fi
# attention kernels (e.g. ATTN_BENCH_FILTER='ceiling/copy|decode_kv/' for the int8/int4 KV caches)
if [ -x "$build/bench/bench_cuda_attention" ] && [ -n "${ATTN_BENCH_FILTER:-}" ]; then
  timeout 240 "$build/bench/bench_cuda_attention" --benchmark_filter="$ATTN_BENCH_FILTER" >"$logs/bench_attention.log" 2>&1
  record bench_cuda_attention "rc $?"
  grep -E "ceilings|decode" "$logs/bench_attention.log" | head -40
fi
if [ -x "$build/bench/bench_cuda_decode_step" ] && [ "${SKIP_STEP_BENCH:-0}" != 1 ]; then
  timeout 150 "$build/bench/bench_cuda_decode_step" "${DECODE_STEP_WHICH:-all}" >"$logs/bench_decode_step.log" 2>&1
  record bench_cuda_decode_step "rc $?"
  grep -vE "^\s*$" "$logs/bench_decode_step.log" | tail -30
fi
left=$((${RUN_BUDGET_S:-560} - ($(date +%s) - t0)))
if [ "$left" -gt 120 ] && [ -x "$cli" ]; then
  say "generation grid, budget $left s"
  OUT="$logs/gen" BUDGET_S=$((left - 20)) TURBINE_BIN="$cli" tools/gpu_bench_generation.sh >"$logs/gen_bench.log" 2>&1
  record "bench generation" "rc $?"
  sed -n '/== turbine bench generation/,$p' "$logs/gen_bench.log"
fi
[ -f "$logs/bench_kernels.log" ] && sed -n '/^benchmark (bf16)/,$p' "$logs/bench_kernels.log" | head -45
exit 0
