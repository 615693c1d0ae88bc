#!/usr/bin/env bash
# On the GPU machine, after tools/gpu_session.sh build: where the time of one decode step goes in
# the real chain (CUDA graph, programmatic launches overlapping), from an Nsight Systems trace of
# bench_cuda_decode_step. gpu_step_profile.sh (Nsight Compute) runs each kernel alone; this one
# keeps the overlap, so it charges each kernel with what it adds to the step: its end minus the
# previous kernel's end on the GPU. Prints per kernel name: launches per step, mean added time,
# mean duration (start to end, including any wait for the previous kernel), and the share.
#   [LABEL="engine default"] tools/gpu_step_timeline.sh [which=llama3-w4-head]
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
build=${BUILD:-build-gpu}
out="${OUT:-/tmp/gpu_out}"
which=${1:-llama3-w4-head}
mkdir -p "$out"
. "$here/tools/gpu_env.sh"
nsys=$(command -v nsys || ls /opt/nvidia/nsight-systems*/*/bin/nsys /opt/nvidia/nsight-systems*/bin/nsys \
  /usr/local/cuda*/nsight-systems*/bin/nsys /usr/local/cuda*/bin/nsys /usr/lib/nsight-systems/bin/nsys 2>/dev/null | head -1)
# (the device machine of 2026-12-06 had Nsight Compute and no Nsight Systems)
[ -n "$nsys" ] || { echo "nsys not found (Nsight Systems is not installed here; gpu_step_profile.sh needs only ncu)"; exit 1; }
rm -f /tmp/step_timeline.nsys-rep /tmp/step_timeline.sqlite
timeout 300 "$nsys" profile --trace=cuda --cuda-graph-trace=node --sample=none --cpuctxsw=none -o /tmp/step_timeline -f true \
  "$build/bench/bench_cuda_decode_step" "$which" "${LABEL:-engine default}" >"$out/step_timeline_$which.log" 2>&1
echo "nsys rc $?"
"$nsys" stats --report cuda_gpu_trace --format csv --output /tmp/step_timeline_trace /tmp/step_timeline.nsys-rep \
  >/dev/null 2>>"$out/step_timeline_$which.log"
python3 - /tmp/step_timeline_trace_cuda_gpu_trace.csv <<'PY'
import csv, sys, collections, re
rows = list(csv.DictReader(open(sys.argv[1])))
ks = []
for r in rows:
    name = r.get("Name", "")
    if not name or name.startswith("[CUDA"):
        continue  # copies and memsets
    start = float(r["Start (ns)"]); dur = float(r["Duration (ns)"])
    short = re.sub(r"\(.*", "", name)
    short = re.sub(r"^(void )?(turbine::cuda::)?(detail::)?", "", short)
    short = re.sub(r"turbine::cuda::(detail::)?", "", short)[:100]
    ks.append((start, start + dur, short))
ks.sort()
if len(ks) < 100:
    print("too few kernels traced:", len(ks)); sys.exit()
# The steps: the embedding kernel starts each one; keep the second half of the run (timed replays).
starts = [i for i, k in enumerate(ks) if "embed" in k[2]]
if len(starts) < 4:
    print("no embedding kernel found to split steps; kernels:", collections.Counter(k[2] for k in ks).most_common(5)); sys.exit()
first = starts[len(starts) // 2]
steps = len(starts) - len(starts) // 2 - 1
last = starts[-1]
add = collections.defaultdict(float); dur = collections.defaultdict(float); n = collections.Counter()
step_ns = []
for s0, s1 in zip(starts[len(starts) // 2:-1], starts[len(starts) // 2 + 1:]):
    step_ns.append(ks[s1 - 1][1] - ks[s0][0])
prev_end = None
for i in range(first, last):
    b, e, name = ks[i]
    a = e - (prev_end if prev_end is not None and i != first else b)
    if i in starts:
        a = e - b  # the step's first kernel: the host gap before it is not the GPU's
    add[name] += a; dur[name] += e - b; n[name] += 1
    prev_end = max(e, prev_end or e)
total = sum(add.values())
print(f"{steps} steps, mean step on the GPU {sum(step_ns) / len(step_ns) / 1e3:.1f} us (first kernel start to last kernel end)")
print(f"{'kernel':100s} {'per step':>8s} {'added us':>9s} {'dur us':>8s} {'share':>6s}")
for k, v in sorted(add.items(), key=lambda kv: -kv[1]):
    print(f"{k:100s} {n[k] / steps:8.1f} {v / n[k] / 1e3:9.2f} {dur[k] / n[k] / 1e3:8.2f} {100 * v / total:5.1f}%")
PY
