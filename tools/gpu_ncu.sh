#!/usr/bin/env bash
# On the GPU machine, after tools/gpu_session.sh build: one kernel launch of a benchmark under
# Nsight Compute (speed of light, launch, occupancy, warp states, memory, scheduler sections; clocks
# and caches left alone so the figures match the benchmark's), the details page to $OUT/ncu_NAME.txt.
#   tools/gpu_ncu.sh NAME BENCH_BINARY BENCHMARK_FILTER KERNEL_REGEX [LAUNCH_SKIP=20]
# bench_cuda_kernels skips its ceilings under TURBINE_BENCH_NO_CEILINGS, so the regex can be broad.
# NCU_STALLS=1 adds the per-reason stall ratios (smsp__average_warps_issue_stalled_*, printed sorted)
# and the source counters, with the SASS and each instruction's stall samples to $OUT/ncu_NAME_sass.csv.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ $# -ge 4 ] || { echo "usage: tools/gpu_ncu.sh NAME BENCH_BINARY BENCHMARK_FILTER KERNEL_REGEX [LAUNCH_SKIP]"; exit 1; }
cd "$here"  # BENCH_BINARY relative to the repository root (build-gpu/bench/...)
name=$1 bin=$2 filter=$3 kre=$4 skip=${5:-20}
out="${OUT:-/tmp/gpu_out}"
mkdir -p "$out"
. "$here/tools/gpu_env.sh"
ncu=$(find_ncu)
[ -n "$ncu" ] || { echo "ncu not found"; exit 1; }
extra=()
if [ "${NCU_STALLS:-0}" = 1 ]; then
  extra=(--section SourceCounters --metrics "regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio"
         --import-source no -o "/tmp/ncu_$name" -f)
fi
TURBINE_BENCH_NO_CEILINGS=1 timeout 240 "$ncu" --clock-control none --cache-control none "${extra[@]}" \
  --section SpeedOfLight --section LaunchStats --section Occupancy --section WarpStateStats \
  --section MemoryWorkloadAnalysis --section SchedulerStats --section ComputeWorkloadAnalysis \
  --kernel-name "regex:$kre" --launch-skip "$skip" --launch-count 1 \
  "$bin" --benchmark_filter="$filter" --benchmark_min_time=0.01s >"$out/ncu_$name.txt" 2>&1
echo "ncu $name rc $?"
if [ "${NCU_STALLS:-0}" = 1 ] && [ -f "/tmp/ncu_$name.ncu-rep" ]; then
  "$ncu" -i "/tmp/ncu_$name.ncu-rep" --page details >"$out/ncu_$name.txt" 2>&1
  "$ncu" -i "/tmp/ncu_$name.ncu-rep" --page source --csv --print-source sass >"$out/ncu_${name}_sass.csv" 2>&1
  echo "stall reasons (warps per issued instruction):"
  grep -E "smsp__average_warps_issue_stalled_.*_per_issue_active.ratio" "$out/ncu_$name.txt" |
    awk '{print $NF, $1}' | sort -g -r | head -12
fi
grep -E "^  [a-zA-Z_].*\(|Duration|DRAM Throughput|Memory Throughput|Compute \(SM\)|Achieved Occupancy|Registers Per|Grid Size|Block Size|Waves Per SM|Issue Slots Busy|Warp Cycles Per Issued|No Eligible" \
  "$out/ncu_$name.txt" | head -24
