#!/usr/bin/env bash
# turbine's CPU engine against llama.cpp on this machine, same model file, same thread counts,
# alternating so that both see the same load (docs/PERFORMANCE.md, "CPU: ... llama.cpp").
#
#   tools/cpu_vs_llama_cpp.sh [TURBINE_BIN] [MODEL]     (ROUNDS=2 by default)
#
# llama.cpp is the one vendored in the llama-cpp-python sdist (pinned below), built once into
# .cache/llama-cpp/build with GGML_NATIVE=ON (about 15 minutes on 2 cores; cmake and a C++ compiler).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
turbine="${1:-$here/build/examples/turbine}"
model="${2:-$here/.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
rounds="${ROUNDS:-2}"
sdist=llama-cpp-python==0.3.36
cache="$here/.cache/llama-cpp"
bench="$cache/build/bin/llama-bench"

[[ -x "$turbine" ]] || { echo "cpu_vs_llama_cpp: no turbine binary at $turbine (build first, or pass its path)" >&2; exit 1; }
[[ -f "$model" ]] || { echo "cpu_vs_llama_cpp: no model at $model (tools/fetch_model.sh)" >&2; exit 1; }
if [[ ! -x "$bench" ]]; then
  mkdir -p "$cache"
  python3 -m pip download --no-deps --no-binary :all: -d "$cache" "$sdist"
  src="$cache/src"
  mkdir -p "$src"
  tar xzf "$cache"/llama_cpp_python-*.tar.gz -C "$src" --strip-components=3 --wildcards '*/vendor/llama.cpp/*'
  cmake -S "$src" -B "$cache/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DGGML_CUDA=OFF >/dev/null
  cmake --build "$cache/build" --target llama-bench -j"$(nproc)"
fi

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "model: $model"
printf '%-10s %-8s %-14s %s\n' engine threads "prefill 128" "decode 128 (tokens/s)"
for ((r = 1; r <= rounds; ++r)); do
  for t in 1 2; do
    ll=$("$bench" -m "$model" -t "$t" -p 128 -n 128 -r 3 -o csv 2>/dev/null | awk -F, 'NR > 1 { gsub(/"/, ""); printf "%.1f ", $(NF - 1) }')
    printf '%-10s %-8s %s\n' llama.cpp "$t" "$ll"
    tb=$("$turbine" bench "$model" --device cpu --threads "$t" --prompt-tokens 128 --gen-tokens 128 --runs 3 --json 2>/dev/null |
         python3 -c 'import json, sys; j = json.load(sys.stdin); print("%.1f %.1f" % (j["prefill_tokens_per_s"], j["decode_tokens_per_s"]))')
    printf '%-10s %-8s %s\n' turbine "$t" "$tb"
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
