#!/usr/bin/env bash
# On the GPU machine: `turbine bench generation --random-weights` for the four reference shapes and
# Hugging Face transformers on the same shapes, within about 9 minutes on an H100. Order:
#   1. turbine_cli for sm_90a with all cores (or TURBINE_BIN, a prebuilt binary, when it runs here)
#   2. batch 1, f16, io 128/256 and 2048/128 (3 runs each) for smollm2-135m, internlm2-1.8b,
#      llama2-7b, llama3-8b; llama3-8b also 1024/1 (the 1024-token prefill) and concurrency 16
#      and 64 with 128/128
#   3. tools/bench_transformers_gpu.py (eager and sdpa, batch 1, 128 + 256 tokens), budgeted
#   4. llama3-8b concurrency 16 and 64 with 128/2048, each only if its estimate (from the
#      128/128 step latency scaled by the bytes a step reads) fits the time left
#   5. per-kernel GPU time of one decode step at concurrency 1 (ncu, when installed and time is left)
# Everything lands in $OUT (at most 8 files: run.log, turbine.json, transformers.json, ncu.txt,
# summary.txt, raw.tar.gz); the short table is printed last.
#   OUT=dir (default /tmp/gen_bench_out)   BUDGET_S=seconds for the whole script (default 530)
#   DEPS_PREFIX=dir: Eigen, nlohmann_json, CLI11 and cpp-httplib for the build (default
#                    build-bench/carry/deps; carry build-bench/carry to the device machine)
#   TURBINE_BIN=path: a turbine built elsewhere for sm_90a (skips the build when it runs here)
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
out="${OUT:-/tmp/gen_bench_out}"
work=/tmp/gen_bench_work
mkdir -p "$out"
rm -rf "$work" && mkdir -p "$work"
log="$out/run.log"
: >"$log"
budget="${BUDGET_S:-530}"
t_start=$(date +%s)
elapsed() { echo $(($(date +%s) - t_start)); }
left() { echo $((budget - $(elapsed))); }
say() { echo "[$(elapsed) s] $*" | tee -a "$log"; }
export PYTHONUNBUFFERED=1

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw \
  --format=csv 2>&1 | tee -a "$log"

# 1. the binary ------------------------------------------------------------------------------
# The CLI links cpp-httplib (turbine serve) and, through it, OpenSSL and brotli: machines without
# them get the copies in build-bench/carry/lib (searched after the CUDA libraries).
. "$here/tools/gpu_env.sh"
[ -d "$here/build-bench/carry/lib" ] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}:$here/build-bench/carry/lib"
bin="${TURBINE_BIN:-}"
if [ -n "$bin" ] && [ -x "$bin" ]; then
  if "$bin" --help >/dev/null 2>>"$log"; then
    say "using the prebuilt $bin"
  else
    say "prebuilt $bin does not run here ($(ldd "$bin" 2>&1 | grep 'not found' | tr '\n' ' ')); building"
    bin=""
  fi
fi
if [ -z "$bin" ]; then
  build=build-gpu-gen
  deps="${DEPS_PREFIX:-$here/build-bench/carry/deps}"
  prefix=()
  [ -d "$deps" ] && prefix=(-DCMAKE_PREFIX_PATH="$deps")
  gen=()
  command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
  say "configure + build turbine_cli (sm_90a, $(nproc) jobs)"
  if ! cmake -S . -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DTURBINE_ENABLE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a \
      -DTURBINE_BUILD_TESTS=OFF -DTURBINE_BUILD_BENCH=OFF -DTURBINE_NATIVE=OFF "${prefix[@]}" >>"$log" 2>&1 ||
     ! cmake --build "$build" -j"$(nproc)" --target turbine_cli >>"$log" 2>&1; then
    grep -E "error|Error" "$log" | head -30
    say "build failed"
    exit 1
  fi
  bin="$build/examples/turbine"
  say "built $bin"
fi

# 2. turbine -----------------------------------------------------------------------------------
turbine() {  # name, seconds, args...: runs `turbine bench generation`, JSON to $work/<name>.json
  local name=$1 limit=$2
  shift 2
  say "turbine $name: $*"
  timeout "$limit" "$bin" bench generation --device cuda --dtype f16 --json "$work/$name.json" "$@" 2>&1 | tee -a "$log" | grep -v "^bench generation"
  local rc=${PIPESTATUS[0]}
  [ "$rc" -ne 0 ] && say "turbine $name: rc $rc"
  return 0
}
turbine smollm2 60 --random-weights --shape smollm2-135m --concurrency 1 --io 128/256,2048/128 --runs 3
turbine internlm2 60 --random-weights --shape internlm2-1.8b --concurrency 1 --io 128/256,2048/128 --runs 3
turbine llama2 90 --random-weights --shape llama2-7b --concurrency 1 --io 128/256,2048/128 --runs 3
turbine llama3_c1 90 --random-weights --shape llama3-8b --concurrency 1 --io 128/256,2048/128,1024/1 --runs 3
turbine llama3_batch 90 --random-weights --shape llama3-8b --concurrency 16,64 --io 128/128

# 3. transformers ------------------------------------------------------------------------------
# Keep about 150 s for the long-output runs and the summary.
hf_budget=$(($(left) - 150))
if [ "$hf_budget" -gt 30 ] && [ "${SKIP_HF:-0}" != 1 ]; then
  say "transformers (budget $hf_budget s)"
  timeout $((hf_budget + 60)) python3 tools/bench_transformers_gpu.py --budget-s "$hf_budget" --json "$work/transformers.json" \
    --turbine-json "$work"/smollm2.json "$work"/internlm2.json "$work"/llama2.json "$work"/llama3_c1.json 2>&1 | tee -a "$log"
else
  say "transformers: skipped, only $(left) s left"
fi

# 4. llama3-8b 128/2048 at concurrency 16 and 64, if the estimate fits -------------------------
estimate() {  # concurrency -> seconds for 128/2048 (0 if unknown)
  python3 - "$work/llama3_batch.json" "$1" <<'EOF'
import json, sys
try:
    j = json.load(open(sys.argv[1]))
except Exception:
    print(0); sys.exit()
c = int(sys.argv[2]); W = j["weight_bytes_read_per_step"]; kv = j["kv_bytes_per_position"]
for r in j["results"]:
    if r.get("concurrency") == c and "error" not in r:
        step = r["token_latency_ms"]["p50"] / 1e3
        scale = (W + c * kv * (128 + 1024)) / (W + c * kv * (128 + 64))  # mean KV length 1152 vs 192
        print(int(2047 * step * scale + c * 0.03 + 25))  # decode + prefill + load and ceilings
        break
else:
    print(0)
EOF
}
for c in 16 64; do
  est=$(estimate $c)
  if [ "$est" -gt 0 ] && [ $((est + 40)) -lt "$(left)" ]; then
    turbine "llama3_long_c$c" $((est + 60)) --random-weights --shape llama3-8b --concurrency $c --io 128/2048
  else
    say "llama3-8b c=$c 128/2048: skipped (estimate ${est} s, $(left) s left)"
  fi
done

# 5. per-kernel GPU time of one decode step (ncu serializes kernels: durations, not overlap) ----
# Only 400 kernels are profiled, from the 6000th on: inside the 63 decode steps of an 8/64 run for
# both shapes (a full profile of every launch does not fit the budget); about 20 s per shape.
ncu_bin=$(find_ncu)
for shape in llama3-8b smollm2-135m; do
  if [ -z "$ncu_bin" ] || [ "$(left)" -lt 50 ]; then
    say "ncu $shape: skipped (ncu '${ncu_bin}', $(left) s left)"
    continue
  fi
  say "ncu $shape: one decode step at concurrency 1"
  timeout 45 "$ncu_bin" --clock-control none --graph-profiling node --launch-skip 6000 --launch-count 400 \
    --metrics gpu__time_duration.sum,dram__bytes_read.sum --csv --page raw --log-file "$work/ncu_$shape.csv" \
    "$bin" bench generation --device cuda --random-weights --shape "$shape" --concurrency 1 --io 8/64 >>"$log" 2>&1 ||
    say "ncu $shape: rc $?"
done
python3 - "$work" >"$out/ncu.txt" 2>&1 <<'EOF'
# One decode step = the kernels after the second-to-last launch of the longest kernel (the LM head)
# up to its last launch; grouped by GEMV prologue/epilogue (or kernel name) and grid.
import csv, glob, os, re, sys
scale = {"ns": 1e-3, "nsecond": 1e-3, "us": 1.0, "usecond": 1.0, "ms": 1e3, "msecond": 1e3,
         "byte": 1.0, "Kbyte": 1e3, "Mbyte": 1e6, "Gbyte": 1e9, "KB": 1e3, "MB": 1e6, "GB": 1e9}
num = lambda v: float(v.replace(",", "")) if re.fullmatch(r"[0-9.,]+", v or "") else None
for path in sorted(glob.glob(os.path.join(sys.argv[1], "ncu_*.csv"))):
    text = open(path).read()
    rows = list(csv.DictReader(text[text.find('"ID"'):].splitlines())) if '"ID"' in text else []
    tkey, bkey = "gpu__time_duration.sum", "dram__bytes_read.sum"
    units = rows[0] if rows and num(rows[0].get(tkey)) is None else {}
    rows = [r for r in rows if num(r.get(tkey)) is not None]
    key = lambda r: (r["Kernel Name"], r.get("Grid Size"))
    if not rows:
        print(f"{os.path.basename(path)}: no kernel rows"); continue
    big = key(max(rows, key=lambda r: num(r[tkey])))
    idx = [i for i, r in enumerate(rows) if key(r) == big]
    if len(idx) < 2:
        print(f"{os.path.basename(path)}: no whole decode step among {len(rows)} kernels"); continue
    ts, bs = scale.get(units.get(tkey, "ns"), 1e-3), scale.get(units.get(bkey, "byte"), 1.0)
    step = rows[idx[-2] + 1: idx[-1] + 1]
    groups = {}
    for r in step:
        m = re.search(r"(GemvX\w*)<[^>]*>, [\w:]*?(Gemv\w+)<", r["Kernel Name"])
        name = (m.group(1) + "+" + m.group(2)) if m else re.sub(r"[<(].*", "", r["Kernel Name"].replace("(anonymous namespace)::", "")).replace("void ", "").split("::")[-1]
        name += " grid" + r.get("Grid Size", "").replace(" ", "")
        g = groups.setdefault(name, [0, 0.0, 0.0])
        g[0] += 1; g[1] += num(r[tkey]) * ts; g[2] += (num(r.get(bkey)) or 0.0) * bs
    total = sum(g[1] for g in groups.values())
    read = sum(g[2] for g in groups.values())
    print(f"{os.path.basename(path)}: one decode step, {len(step)} kernels, {total:.1f} us of kernel time (serialized), "
          f"{read / 1e9:.3f} GB read, {read / (total * 1e-6) / 1e9:.0f} GB/s")
    for name, (n, t, b) in sorted(groups.items(), key=lambda kv: -kv[1][1]):
        print(f"  {name:46s} x{n:3d} {t:8.1f} us {100 * t / total:5.1f}% {t / n:7.2f} us/launch {b / n / 1e6:7.1f} MB/launch"
              f" {b / (t * 1e-6) / 1e9 if t else 0:6.0f} GB/s")
EOF
cat "$out/ncu.txt" | tee -a "$log"

# summary --------------------------------------------------------------------------------------
python3 - "$work" >"$out/summary.txt" 2>&1 <<'EOF'
import glob, json, os, sys
w = sys.argv[1]
def load(n):
    try: return json.load(open(os.path.join(w, n + ".json")))
    except Exception: return None
def row(j, c, p, o):
    for r in (j or {}).get("results", []):
        if r.get("concurrency") == c and r.get("prompt_tokens") == p and r.get("output_tokens") == o and "error" not in r:
            return r
hf = load("transformers") or {}
hf_best = {}
for r in hf.get("results", []):
    hf_best.setdefault(r["shape"], {})[r["attn"]] = r["tokens_per_s"]
targets = {"smollm2-135m": 2500, "internlm2-1.8b": 650, "llama2-7b": 200, "llama3-8b": 168}
calm = {"smollm2-135m": 1255, "internlm2-1.8b": 507, "llama2-7b": 174, "llama3-8b": 156}
names = {"smollm2-135m": "smollm2", "internlm2-1.8b": "internlm2", "llama2-7b": "llama2", "llama3-8b": "llama3_c1"}
j0 = next((load(n) for n in names.values() if load(n)), None)
if j0:
    print(f"device {j0['device']}: copy ceiling {j0['ceilings']['copy_GBps']:.0f} GB/s, f16 GEMM {j0['ceilings']['gemm_TFLOPs']:.0f} TFLOP/s")
print("c=1 f16: dec = decode-only tok/s of 128/256 (floor: bandwidth floor, frac: dec/floor); out = 256 tokens / (prefill + decode);")
print("2048/128 = decode tok/s at 2048-token context; HF = transformers tok/s (prefill included), x HF = out / best HF")
print("GPU frac = bandwidth floor / GPU time of a step (decode graph replayed alone): the kernels' own share")
print(f"{'shape':15s} {'dec t/s':>8s} {'floor':>7s} {'frac':>5s} {'GPU frac':>8s} {'out t/s':>8s} {'2048/128':>8s} | {'HF eager':>8s} {'HF sdpa':>8s} {'x HF':>6s} 10x | {'calm':>5s} {'target':>6s} met")
ok_all = {}
for shape, n in names.items():
    j = load(n); r = row(j, 1, 128, 256); r2 = row(j, 1, 2048, 128)
    h = hf_best.get(shape, {})
    best = max(h.values()) if h else None
    if not r:
        print(f"{shape:15s} (no result)"); continue
    ratio = r["output_tokens_per_s"] / best if best else None
    met = r["decode_tokens_per_s"] >= targets[shape]
    print(f"{shape:15s} {r['decode_tokens_per_s']:8.1f} {r['bandwidth_floor_tokens_per_s']:7.1f} {100 * r['fraction_of_bandwidth_floor']:4.0f}% "
          f"{100 * r.get('device_fraction_of_bandwidth_floor', 0):7.0f}% {r['output_tokens_per_s']:8.1f} {r2['decode_tokens_per_s'] if r2 else 0:8.1f} | "
          f"{h.get('eager', 0):8.1f} {h.get('sdpa', 0):8.1f} {(f'{ratio:5.1f}x') if ratio else '     -'} {('yes' if ratio >= 10 else 'NO ') if ratio else '-  '} | {calm[shape]:5d} {targets[shape]:6d} {'yes' if met else 'NO'}")
j = load("llama3_c1"); r = row(j, 1, 1024, 1)
if r:
    print(f"llama3-8b 1024-token prefill: {r['first_token_latency_ms']['p50']:.1f} ms (p50 of 3; floor {r['prefill_floor_ms']:.1f} ms) target <= 30 ms: {'yes' if r['first_token_latency_ms']['p50'] <= 30 else 'NO'}")
jb = load("llama3_batch")
for c in (16, 64):
    r = row(jb, c, 128, 128)
    if r:
        extra = f" target >= 6000: {'yes' if r['decode_tokens_per_s'] >= 6000 else 'NO'}" if c == 64 else ""
        print(f"llama3-8b c={c} 128/128: decode {r['decode_tokens_per_s']:.0f} tok/s ({100 * r['fraction_of_bandwidth_floor']:.0f}% of floor "
              f"{r['bandwidth_floor_tokens_per_s']:.0f}), output {r['output_tokens_per_s']:.0f} tok/s, token p50 {r['token_latency_ms']['p50']:.2f} ms, "
              f"first token mean {r['first_token_latency_ms']['mean']:.0f} ms, host sampling {r['host_sampling_ms_per_step']:.2f} ms/step, "
              f"host logits conversion ~{r.get('host_logits_conversion_ms_per_step_estimate', 0):.2f} ms/step, mem {r['peak_device_memory_used_GiB']:.1f} GiB{extra}")
    r = row(load(f"llama3_long_c{c}"), c, 128, 2048)
    if r:
        print(f"llama3-8b c={c} 128/2048: decode {r['decode_tokens_per_s']:.0f} tok/s ({100 * r['fraction_of_bandwidth_floor']:.0f}% of floor), "
              f"output {r['output_tokens_per_s']:.0f} tok/s, token p50/p99 {r['token_latency_ms']['p50']:.2f}/{r['token_latency_ms']['p99']:.2f} ms, mem {r['peak_device_memory_used_GiB']:.1f} GiB")
EOF
# one JSON with every turbine run, keyed by run name
python3 - "$work" "$out/turbine.json" <<'EOF'
import glob, json, os, sys
runs = {}
for p in sorted(glob.glob(os.path.join(sys.argv[1], "*.json"))):
    name = os.path.basename(p)[:-5]
    if name != "transformers":
        try: runs[name] = json.load(open(p))
        except Exception as e: runs[name] = {"error": str(e)}
json.dump(runs, open(sys.argv[2], "w"), indent=1)
EOF
[ -f "$work/transformers.json" ] && cp "$work/transformers.json" "$out/"
tar -czf "$out/raw.tar.gz" -C "$work" . 2>/dev/null
say "done in $(elapsed) s"
echo
echo "== turbine bench generation (f16, random weights) vs transformers"
cat "$out/summary.txt"
