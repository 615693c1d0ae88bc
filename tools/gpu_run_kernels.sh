#!/usr/bin/env bash
# On a GPU machine: configures for Hopper (sm_90a), builds the CUDA kernel tests (norm, embedding,
# activation, rope, gemv, gemm) and bench_cuda_kernels with all cores, runs the tests, runs the
# benchmarks (about 2 minutes on an H100), keeps the logs under $OUT and prints a short table last.
# At most 5 files land in $OUT: build.log, tests.log, bench.log, bench.json, sanitize.log.
#   tools/gpu_run_kernels.sh            OUT=dir for the logs (default build-gpu-kern/out)
#   DEPS_PREFIX=dir   an install prefix with doctest, Eigen, nlohmann_json and Google Benchmark for
#                     machines without them (default build-cuda1/deps when it exists)
#   SANITIZE=1        also runs the rope, embedding and gemv suites under compute-sanitizer memcheck
#   BENCH_FILTER=re   passes --benchmark_filter;  MIN_TIME=s  --benchmark_min_time (default 0.01)
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
build="${BUILD_DIR:-build-gpu-kern}"
out="${OUT:-$here/$build/out}"
mkdir -p "$out"
rm -f "$out"/*.log "$out/bench.json"
deps="${DEPS_PREFIX:-$here/build-cuda1/deps}"
prefix=()
if [ -d "$deps" ]; then
  prefix=(-DCMAKE_PREFIX_PATH="$deps")
  export LD_LIBRARY_PATH="$deps/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
fi
gen=()
command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
jobs="$(nproc)"

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
suites=(norm embedding activation rope gemv gemm)
targets=(bench_cuda_kernels)
for s in "${suites[@]}"; do targets+=("test_cuda_$s"); done
if ! cmake --build "$build" -j"$jobs" --target "${targets[@]}" >>"$out/build.log" 2>&1; then
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
  echo "== $*" >>"$out/$name.log"
  timeout "$limit" "$@" >>"$out/$name.log" 2>&1
  local rc=$?
  echo "$name: $(basename "$1") rc $rc in $(($(date +%s) - t)) s"
  return $rc
}
rc_tests=0
for s in "${suites[@]}"; do
  run tests 150 "$build/tests/test_cuda_$s" || rc_tests=1
done
bench_args=(--benchmark_min_time="${MIN_TIME:-0.01}" --benchmark_out="$out/bench.json" --benchmark_out_format=json)
[ -n "${BENCH_FILTER:-}" ] && bench_args+=(--benchmark_filter="$BENCH_FILTER")
run bench 300 "$build/bench/bench_cuda_kernels" "${bench_args[@]}"
rc_bench=$?
if [ "${SANITIZE:-0}" = 1 ] && command -v compute-sanitizer >/dev/null 2>&1; then
  for s in rope embedding gemv; do
    run sanitize 90 compute-sanitizer --tool memcheck --error-exitcode 9 "$build/tests/test_cuda_$s" || true
  done
  grep -E "ERROR SUMMARY" "$out/sanitize.log"
fi

echo
echo "== test failures (if any)"
grep -E "FAIL|ERROR|error:" "$out/tests.log" | head -20
grep -E "^\[doctest\] (test cases|assertions)" "$out/tests.log"
echo
echo "== worst relative error per suite and precision (tol: f16 1e-3, bf16 1e-2)"
awk '
  /^== / { n = split($2, p, "_"); suite = p[n] }
  /rel err/ {
    prec = ($0 ~ / bf16 /) ? "bf16" : (($0 ~ / f16 /) ? "f16" : "?")
    for (i = 1; i <= NF; ++i) if ($i == "err") e = $(i + 1)
    key = suite " " prec
    cases[key]++
    if (e == "nan" || e == "-nan") bad[key] = 1
    else if (!(key in worst) || e + 0 > worst[key] + 0) worst[key] = e
  }
  END { for (k in cases) printf "  %-22s cases %4d  worst %s%s\n", k, cases[k], worst[k], (k in bad) ? "  NaN!" : "" }
' "$out/tests.log" | sort
echo
sed -n '/^benchmark (bf16)/,$p' "$out/bench.log"
grep -E "^ceilings|^device" "$out/bench.log"
echo "tests rc $rc_tests, bench rc $rc_bench"
[ $rc_tests -eq 0 ] && [ $rc_bench -eq 0 ]
