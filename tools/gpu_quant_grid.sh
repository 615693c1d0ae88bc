#!/usr/bin/env bash
# On the GPU machine: the `turbine bench generation` grid of the quantization issue, fp16 vs W4A16 vs
# W4A16 + KV int8 (and f16 + KV int8), on random weights of a shape, with the memory each uses.
#   TURBINE_BIN=build-gpu/examples/turbine SHAPE=llama3-8b CONC=1,16,64 IO=128/128 tools/gpu_quant_grid.sh
# JSON per row under $OUT (grid_<weights>_<kv>.json) and a short table last.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
bin=${TURBINE_BIN:-build-gpu/examples/turbine}
out=${OUT:-/tmp/gpu_out}
shape=${SHAPE:-llama3-8b}
mkdir -p "$out"
. "$here/tools/gpu_env.sh"
for row in ${ROWS:-same/same w4/same w4/int8 same/int8}; do
  weights=${row%/*} kv=${row#*/}
  timeout "${ROW_S:-120}" "$bin" bench generation --device cuda --dtype f16 --random-weights --shape "$shape" \
    --weights "$weights" --kv "$kv" --concurrency "${CONC:-1,16,64}" --io "${IO:-128/128}" --runs "${RUNS:-1}" \
    --json "$out/grid_${weights}_${kv}.json" >"$out/grid_${weights}_${kv}.log" 2>&1
  echo "weights $weights kv $kv: rc $?"
done
python3 - "$out" "$shape" <<'PY'
import glob, json, os, sys
out, shape = sys.argv[1], sys.argv[2]
print(f"== turbine bench generation, {shape}, random weights, f16 activations")
print(f"{'weights':8s} {'kv':5s} {'conc':>4s} {'io':>8s} {'decode tok/s':>12s} {'token p50 ms':>12s} {'1st token ms':>12s} {'output tok/s':>12s} {'weights GB':>10s} {'KV B/pos':>8s} {'mem GiB':>8s}")
for p in sorted(glob.glob(os.path.join(out, "grid_*.json"))):
    j = json.load(open(p))
    w, kv = j.get("weights", "?"), j.get("kv", "?")
    for r in j.get("results", []):
        if "error" in r:
            print(f"{w:8s} {kv:5s} {r.get('concurrency')}: {r['error'][:80]}"); continue
        print(f"{w:8s} {kv:5s} {r['concurrency']:4d} {str(r['prompt_tokens']) + '/' + str(r['output_tokens']):>8s} "
              f"{r['decode_tokens_per_s']:12.1f} {r['token_latency_ms']['p50']:12.2f} {r['first_token_latency_ms']['p50']:12.1f} "
              f"{r['output_tokens_per_s']:12.1f} {j.get('weight_bytes_read_per_step', 0) / 1e9:10.2f} {j.get('kv_bytes_per_position', 0):8.0f} "
              f"{r.get('peak_device_memory_used_GiB', 0):8.2f}")
PY
