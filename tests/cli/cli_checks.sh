#!/usr/bin/env bash
# The turbine CLI with bad input: each case must exit non-zero with one line on stderr that names
# the problem, and never crash (no signal exit codes). Then the happy paths: --help everywhere,
# info, and generate answering the capital question.
#   cli_checks.sh TURBINE_BINARY MODEL_GGUF_OR_EMPTY
set -u
bin="$1"
model="${2:-}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
failures=0
passed=0

# how long each check took, printed at the end (slowest first) to show where the test's time goes
timings="$tmp/timings"
timed() {  # name, command...
  local name="$1" start=$SECONDS
  shift
  "$@"
  local rc=$?
  echo "$((SECONDS - start)) s  $name" >>"$timings"
  return $rc
}

expect_error() {  # name, expected substring, command...
  local name="$1" want="$2"
  shift 2
  timed "$name" "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  local lines
  lines=$(grep -c . "$tmp/err")
  if [ "$rc" -eq 0 ] || [ "$rc" -ge 128 ]; then
    echo "FAIL $name: exit code $rc"; failures=$((failures + 1)); return
  fi
  if ! grep -qF -- "$want" "$tmp/err"; then
    echo "FAIL $name: stderr lacks '$want':"; cat "$tmp/err"; failures=$((failures + 1)); return
  fi
  if [ "$lines" -ne 1 ]; then
    echo "FAIL $name: expected one line on stderr, got $lines:"; cat "$tmp/err"; failures=$((failures + 1)); return
  fi
  passed=$((passed + 1))
}

expect_ok() {  # name, expected substring in stdout, command...
  local name="$1" want="$2"
  shift 2
  if ! timed "$name" "$@" >"$tmp/out" 2>"$tmp/err"; then
    echo "FAIL $name: non-zero exit"; cat "$tmp/err"; failures=$((failures + 1)); return
  fi
  if ! grep -qiF -- "$want" "$tmp/out"; then
    echo "FAIL $name: stdout lacks '$want':"; head -c 2000 "$tmp/out"; failures=$((failures + 1)); return
  fi
  passed=$((passed + 1))
}

for sub in "" chat generate info bench "bench generation" "bench throughput" "bench serve" "eval ppl" quantize serve; do
  expect_ok "help $sub" "Usage" "$bin" $sub --help
done
docs="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../docs" && pwd)"

expect_error "missing file" "no such file" "$bin" info "$tmp/nope.gguf"
printf 'NOTAGGUF-----------------------------' >"$tmp/magic.gguf"
expect_error "wrong magic" "magic.gguf" "$bin" info "$tmp/magic.gguf"
: >"$tmp/empty.gguf"
expect_error "empty file" "empty.gguf" "$bin" info "$tmp/empty.gguf"
mkdir -p "$tmp/emptydir"
expect_error "directory without config" "config.json" "$bin" info "$tmp/emptydir"
expect_error "bad flag value" "temperature" "$bin" generate --temperature -3 -p hi "$tmp/nope.gguf"
expect_error "unknown device" "device" "$bin" chat --device tpu
expect_error "quantize without output" "--output" "$bin" quantize "$tmp/nope.gguf"
expect_error "quantize bad method" "--method" "$bin" quantize "$tmp/nope.gguf" -o "$tmp/q" --method gptq
expect_error "quantize bad group" "--group-size" "$bin" quantize "$tmp/nope.gguf" -o "$tmp/q" --group-size 100
expect_error "quantize bad bits" "--w-bits" "$bin" quantize "$tmp/nope.gguf" -o "$tmp/q" --w-bits 8
expect_error "quantize bad device" "--device" "$bin" quantize "$tmp/nope.gguf" -o "$tmp/q" --device tpu
# no GPU visible (here or on the GPU machine): --device cuda says what to do before loading anything
expect_error "quantize --device cuda without a GPU" "--device cpu" env CUDA_VISIBLE_DEVICES= "$bin" quantize \
  "$tmp/nope.gguf" -o "$tmp/q" --device cuda
expect_error "eval ppl without text" "--text" "$bin" eval ppl "$tmp/nope.gguf"
expect_error "bench serve bad url" "--url" "$bin" bench serve --url ftp://example.org
expect_error "bad cache fraction" "cache-max-entry-count" "$bin" bench throughput --cache-max-entry-count 2
expect_error "bench generation bad --weights" "--weights" "$bin" bench generation --random-weights --shape smollm2-135m --weights w3
expect_error "bench generation --weights w4 on the CPU" "GPU only" "$bin" bench generation --random-weights --shape smollm2-135m \
  --device cpu --weights w4 --io 8/8
expect_error "bench generation --kv int8 on the CPU" "GPU only" "$bin" bench generation --random-weights --shape smollm2-135m \
  --device cpu --kv int8 --io 8/8

if [ -n "$model" ]; then
  size=$(stat -c %s "$model")
  for cut in 3 20 1000 100000 1000000 $((size / 2)) $((size - 1)); do
    head -c "$cut" "$model" >"$tmp/cut.gguf"
    expect_error "truncated at $cut" "cut.gguf" "$bin" info "$tmp/cut.gguf"
  done
  expect_ok "info" "llama" "$bin" info "$model"
  expect_ok "capital of France" "Paris" "$bin" generate "$model" -n 24 -p "What is the capital of France?"
  expect_ok "generate --json" '"finish_reason"' "$bin" generate "$model" --json -n 4 -p "hi" -p "hello"
  # a 4-bit LM head (rounded at load): runs; info, which builds no model, refuses the flag
  expect_ok "generate --lm-head-int4" '"finish_reason"' "$bin" generate "$model" --lm-head-int4 --json -n 4 -p "hi"
  expect_error "info --lm-head-int4" "lm-head-int4" "$bin" info "$model" --lm-head-int4
  printf 'What is the capital of France?\n/reset\nWhat is 2+2?\n/exit\n' >"$tmp/chat_in"
  expect_ok "chat session" "Paris" "$bin" chat "$model" -n 24 <"$tmp/chat_in"
  expect_ok "bench" "decode" "$bin" bench "$model" --prompt-tokens 16 --gen-tokens 8 --runs 1
  # a quantized KV cache (quantized as it is written) in generate and chat
  expect_ok "generate --kv int8" "Paris" "$bin" generate "$model" --kv int8 -n 24 -p "What is the capital of France?"
  expect_ok "generate --kv int4" "Paris" "$bin" generate "$model" --kv int4 -n 24 -p "What is the capital of France?"
  expect_ok "chat --kv int8" "Paris" "$bin" chat "$model" --kv int8 -n 24 <"$tmp/chat_in"
  expect_error "generate --kv int3" "--kv" "$bin" generate "$model" --kv int3 -p hi
  expect_ok "bench throughput --kv int8" "requests/s" "$bin" bench throughput "$model" --kv int8 --num-prompts 4 \
    --max-concurrent 2 --input-median 12 --output-median 6 --max-input 40 --max-output 12
  expect_ok "bench throughput --kv int4" "requests/s" "$bin" bench throughput "$model" --kv int4 --num-prompts 4 \
    --max-concurrent 2 --input-median 12 --output-median 6 --max-input 40 --max-output 12
  if "$bin" serve --help | grep -q -- "--cache-gib"; then  # built with cpp-httplib: serve --kv int8 answers over HTTP
    "$bin" serve "$model" --kv int8 --port 0 --quiet >"$tmp/serve_out" 2>"$tmp/serve_err" &
    serve_pid=$!
    port=""
    for _ in $(seq 1 300); do
      port=$(sed -n 's|.*listening on http://[^:]*:\([0-9]*\)/v1.*|\1|p' "$tmp/serve_out")
      [ -n "$port" ] && break
      kill -0 "$serve_pid" 2>/dev/null || break
      sleep 0.1
    done
    if [ -n "$port" ]; then
      expect_ok "serve --kv int8" "Paris" python3 -c '
import json, sys, urllib.request
body = {"messages": [{"role": "user", "content": "What is the capital of France?"}], "max_tokens": 24, "temperature": 0}
req = urllib.request.Request(sys.argv[1], json.dumps(body).encode(), {"Content-Type": "application/json"})
print(json.load(urllib.request.urlopen(req, timeout=120))["choices"][0]["message"]["content"])' \
        "http://127.0.0.1:$port/v1/chat/completions"
    else
      echo "FAIL serve --kv int8: no port printed"; cat "$tmp/serve_err"; failures=$((failures + 1))
    fi
    kill "$serve_pid" 2>/dev/null
    wait "$serve_pid" 2>/dev/null
  fi
  expect_error "--kv with --tp" "runs unsplit" "$bin" generate "$model" --device cpu --tp 3 --kv int8 -p hi
  # quantize -> an AWQ directory that loads, answers, and measures
  expect_error "awq without calibration" "--calib" "$bin" quantize "$model" -o "$tmp/awq" --method awq
  expect_ok "quantize rtn" "wrote" "$bin" quantize "$model" --method rtn -o "$tmp/rtn"
  expect_ok "rtn answers (model after -m)" "Paris" "$bin" generate -m "$tmp/rtn" -n 24 -p "What is the capital of France?"
  expect_ok "quantize awq" "awq scales" "$bin" quantize "$model" --method awq --calib "$docs/ARCHITECTURE.md" \
    --calib-samples 4 --calib-seqlen 64 -o "$tmp/awq"
  # (--no-refine keeps it short: the refinement alone takes a minute here)
  expect_ok "quantize awq --feedback --sequential --no-mlp-loss" "error feedback: output error" "$bin" quantize "$model" --method awq \
    --calib "$docs/ARCHITECTURE.md" --calib-samples 2 --calib-seqlen 64 --no-refine --feedback --sequential --no-mlp-loss -o "$tmp/awq_fed"
  expect_ok "awq info" "I4G64" "$bin" info "$tmp/awq" --tensors
  expect_ok "awq answers" "Paris" "$bin" generate "$tmp/awq" -n 24 -p "What is the capital of France?"
  expect_ok "awq chat session" "Paris" "$bin" chat "$tmp/awq" -n 24 <"$tmp/chat_in"
  expect_error "quantize twice" "already quantized" "$bin" quantize "$tmp/awq" --method rtn -o "$tmp/again"
  expect_ok "eval ppl" "perplexity" "$bin" eval ppl "$model" --text "$docs/ARCHITECTURE.md" --ctx 96 --max-tokens 300
  expect_ok "eval ppl awq" "perplexity" "$bin" eval ppl "$tmp/awq" --text "$docs/ARCHITECTURE.md" --ctx 96 --max-tokens 300
  expect_ok "bench throughput" "requests/s" "$bin" bench throughput "$model" --num-prompts 6 --max-concurrent 3 \
    --input-median 12 --output-median 6 --max-input 40 --max-output 12
  expect_ok "bench throughput, prefix caching in a small cache" "preemptions" "$bin" bench throughput "$model" --num-prompts 6 \
    --max-concurrent 3 --input-median 12 --output-median 6 --max-input 40 --max-output 12 --cache-gib 0.01 --enable-prefix-caching
  if "$bin" serve --help | grep -q -- "--cache-gib"; then  # built with cpp-httplib
    expect_ok "bench serve (in-process server)" "requests/s" "$bin" bench serve "$model" --num-prompts 6 --concurrency 3 \
      --input-median 12 --output-median 6 --max-input 40 --max-output 12
  fi
  # --tp: the model split into simulated ranks on the CPU answers as the whole model does
  expect_ok "generate --tp 3" "Paris" "$bin" generate "$model" --device cpu --tp 3 -n 24 -p "What is the capital of France?"
  expect_ok "chat --tp 3" "Paris" "$bin" chat "$model" --device cpu --tp 3 -n 24 <"$tmp/chat_in"
  expect_ok "bench --tp 3" "decode" "$bin" bench "$model" --device cpu --tp 3 --prompt-tokens 16 --gen-tokens 8 --runs 1
  expect_ok "bench throughput --tp 3" "requests/s" "$bin" bench throughput "$model" --device cpu --tp 3 --num-prompts 4 \
    --max-concurrent 2 --input-median 12 --output-median 6 --max-input 40 --max-output 12
  expect_error "--tp that does not divide the heads" "--tp 2" "$bin" generate "$model" --device cpu --tp 2 -p hi
  expect_error "--tp 0" "--tp" "$bin" generate "$model" --device cpu --tp 0 -p hi
  expect_error "bench throughput bad lengths" "--min-len" "$bin" bench throughput "$model" --min-len 50 --max-input 20
  expect_error "eval ppl short text" "less than one window" "$bin" eval ppl "$model" --text "$docs/ARCHITECTURE.md" --ctx 4000 --max-tokens 300
else
  echo "[skipped] model checks: default model not fetched (tools/fetch_model.sh)"
fi

echo "slowest checks:"
sort -rn "$timings" | head -12
echo "$passed passed, $failures failed"
[ "$failures" -eq 0 ]
