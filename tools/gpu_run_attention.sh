#!/usr/bin/env bash
# On a GPU machine: configures for Hopper (sm_90a), builds the attention kernel tests and benchmark
# with 16 jobs, runs them (about 2 minutes on an H100), keeps every log under $OUT and prints a
# short table last. At most 6 files land in $OUT (build, test and bench logs, bench.json).
#   tools/gpu_run_attention.sh            OUT=dir for the logs (default build-gpu-attn/out)
#   DEPS_PREFIX=dir   an install prefix holding doctest, Eigen, nlohmann_json and Google Benchmark
#                     for machines without them (default build-cuda2/deps when it exists)
#   tools/gpu_run_attention.sh --make-deps   (on the development machine, Debian/Ubuntu with the
#                     packages of tools/install_deps.sh) fills build-cuda2/deps from /usr; carry
#                     that folder to the GPU machine (device run: carry ["build-cuda2/deps"])
#   SANITIZE=1        also runs the short cases under compute-sanitizer memcheck and racecheck
#   BENCH_FILTER=re   passes --benchmark_filter
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
if [ "${1:-}" = --make-deps ]; then
  set -e
  d=build-cuda2/deps
  a=$(gcc -print-multiarch)
  rm -rf "$d"
  mkdir -p "$d/include" "$d/lib/$a/cmake" "$d/share/eigen3" "$d/share/cmake"
  cp -r /usr/include/eigen3 /usr/include/nlohmann /usr/include/doctest /usr/include/benchmark "$d/include/"
  cp -a /usr/lib/$a/libbenchmark.so* /usr/lib/$a/libbenchmark_main.a "$d/lib/$a/"
  cp -r /usr/lib/$a/cmake/benchmark "$d/lib/$a/cmake/"
  cp -r /usr/share/eigen3/cmake "$d/share/eigen3/"
  cp -r /usr/share/cmake/nlohmann_json "$d/share/cmake/"
  du -sh "$d"
  exit 0
fi
build="${BUILD_DIR:-build-gpu-attn}"
out="${OUT:-$here/$build/out}"
mkdir -p "$out"
rm -f "$out"/*.log "$out/bench.json"
deps="${DEPS_PREFIX:-$here/build-cuda2/deps}"
prefix=()
if [ -d "$deps" ]; then
  prefix=(-DCMAKE_PREFIX_PATH="$deps")
  export LD_LIBRARY_PATH="$deps/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
fi
gen=()
command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)

nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw \
  --format=csv >"$out/build.log" 2>&1 || true
cat "$out/build.log"

t0=$(date +%s)
if ! cmake -S . -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DTURBINE_ENABLE_CUDA=ON \
    -DTURBINE_BUILD_EXAMPLES=OFF -DCMAKE_CUDA_ARCHITECTURES=90a "${prefix[@]}" >>"$out/build.log" 2>&1; then
  tail -40 "$out/build.log"
  echo "configure failed"
  exit 1
fi
targets=(test_cuda_attention_prefill test_cuda_attention_decode bench_cuda_attention)
if ! cmake --build "$build" -j16 --target "${targets[@]}" >>"$out/build.log" 2>&1; then
  grep -E "error|Error" "$out/build.log" | head -40
  echo "build failed"
  exit 1
fi
grep -E "warning" "$out/build.log" | head -20
echo "configure + build: $(($(date +%s) - t0)) s"

run() {  # log name, seconds, command... (appends to $out/<name>.log)
  local name=$1 limit=$2
  shift 2
  local t=$(date +%s)
  timeout "$limit" "$@" >>"$out/$name.log" 2>&1
  local rc=$?
  echo "$name: rc $rc in $(($(date +%s) - t)) s"
  return $rc
}
run test_prefill 150 "$build/tests/test_cuda_attention_prefill"
rc_p=$?
run test_decode 150 "$build/tests/test_cuda_attention_decode"
rc_d=$?
bench_args=(--benchmark_out="$out/bench.json" --benchmark_out_format=json)
[ -n "${BENCH_FILTER:-}" ] && bench_args+=(--benchmark_filter="$BENCH_FILTER")
run bench 240 "$build/bench/bench_cuda_attention" "${bench_args[@]}"
rc_b=$?
if [ "${SANITIZE:-0}" = 1 ] && command -v compute-sanitizer >/dev/null 2>&1; then
  run sanitize 60 compute-sanitizer --tool memcheck --error-exitcode 9 \
    "$build/tests/test_cuda_attention_prefill" -tc="prefill: every*,prefill: chunked*"
  run sanitize 60 compute-sanitizer --tool racecheck --error-exitcode 9 \
    "$build/tests/test_cuda_attention_prefill" -tc="prefill f16*"
  run sanitize 60 compute-sanitizer --tool memcheck --error-exitcode 9 \
    "$build/tests/test_cuda_attention_decode" -tc="decode f16*,decode: several*,decode: padded*,decode: a CUDA graph*"
  grep -E "ERROR SUMMARY" "$out/sanitize.log"
fi

echo
echo "== test failures (if any)"
grep -hE "ERROR|FAILED|NON-FINITE|CHECK\(" "$out/test_prefill.log" "$out/test_decode.log" | head -20
grep -hE "^\[doctest\] (test cases|assertions)" "$out/test_prefill.log" "$out/test_decode.log"
python3 - "$out" <<'EOF'
import json, os, re, sys
out = sys.argv[1]
def worst(path, key):
    rows = []
    for line in open(path, errors="replace"):
        m = re.search(r"rel err ([0-9.e+-]+|nan|-nan)", line)
        if m and line.startswith(key):
            rows.append((float(m.group(1).replace("-nan", "nan")), line.strip()))
    return rows
for log, key in (("test_prefill.log", "prefill"), ("test_decode.log", "decode")):
    p = os.path.join(out, log)
    if not os.path.exists(p):
        continue
    for prec in ("f16", "bf16"):
        rows = [r for r in worst(p, key) if f" {prec} " in r[1] or r[1].startswith(f"{key} {prec}")]
        if key == "decode":
            rows += [r for r in worst(p, "decode graph") if prec == "f16"]
        if rows:
            e = max(r[0] for r in rows)
            print(f"{key:8s} {prec:5s} cases {len(rows):4d}  worst rel err {e:.2e}")
p = os.path.join(out, "bench.json")
if os.path.exists(p):
    data = json.load(open(p))
    print()
    print(f"{'benchmark':52s} {'time':>10s} {'rate':>14s} {'fraction':>9s}")
    for b in data.get("benchmarks", []):
        name = re.sub(r"/(min_time|iterations):[^/]*|/manual_time", "", b["name"])
        unit = b.get("time_unit", "ns")
        t = f"{b['real_time']:.3f} {unit}" if not name.startswith("ceiling") else ""
        if "TFLOP/s" in b:
            rate, frac = f"{b['TFLOP/s']:.1f} TFLOP/s", b.get("frac_gemm")
        elif "GB/s" in b:
            rate, frac = f"{b['GB/s']:.0f} GB/s", b.get("frac_copy")
        else:
            rate, frac = "", None
        fr = f"{frac:.3f}" if frac is not None else ""
        print(f"{name:52s} {t:>10s} {rate:>14s} {fr:>9s}")
EOF
echo "tests: prefill rc $rc_p, decode rc $rc_d; bench rc $rc_b"
[ $rc_p -eq 0 ] && [ $rc_d -eq 0 ] && [ $rc_b -eq 0 ]
