#!/usr/bin/env bash
# On the GPU machine, after tools/gpu_session.sh build: where the time of one decode step goes.
# Runs bench_cuda_decode_step under Nsight Compute (clocks and caches left alone), profiles a
# window of kernel launches in the middle of the timed steps, and prints per kernel name: launches,
# total and mean duration, and the share of the window. Kernels run one at a time under ncu, so
# the sum is the step without overlap (programmatic launches overlap prologues in a real step).
#   [LABEL="engine default"] tools/gpu_step_profile.sh [which=llama3-w4] [skip=4000] [count=600]   (LABEL: bench_cuda_decode_step's configuration)
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
build=${BUILD:-build-gpu}
out="${OUT:-/tmp/gpu_out}"
which=${1:-llama3-w4} skip=${2:-4000} count=${3:-600}
mkdir -p "$out"
. "$here/tools/gpu_env.sh"
ncu=$(find_ncu)
[ -n "$ncu" ] || { echo "ncu not found"; exit 1; }
"$ncu" --clock-control none --cache-control none --metrics gpu__time_duration.sum --launch-skip "$skip" \
  --launch-count "$count" --csv --page raw "$build/bench/bench_cuda_decode_step" "$which" "${LABEL:-engine default}" >"$out/step_profile_$which.csv" \
  2>"$out/step_profile_$which.err"
echo "ncu rc $?"
python3 - "$out/step_profile_$which.csv" <<'PY'
import csv, sys, collections, re
rows = [r for r in csv.reader(open(sys.argv[1])) if r]
hdr = next((i for i, r in enumerate(rows) if "Kernel Name" in r), None)
if hdr is None:
    print("no kernel rows:", open(sys.argv[1]).read()[:400]); sys.exit()
h = rows[hdr]; ki, ti = h.index("Kernel Name"), h.index("gpu__time_duration.sum")
unit = rows[hdr + 1][ti] if len(rows) > hdr + 1 else "nsecond"
to_us = {"nsecond": 1e-3, "usecond": 1.0, "msecond": 1e3}.get(unit, 1e-3)
tot = collections.defaultdict(float); n = collections.Counter()
for r in rows[hdr + 1:]:
    try: v = float(r[ti].replace(",", ""))
    except ValueError: continue
    name = re.sub(r"\(.*", "", r[ki]).split("<")[0].split("::")[-1] + ("<" + r[ki].split("<", 1)[1][:60] if "<" in r[ki] else "")
    tot[name] += v * to_us; n[name] += 1
s = sum(tot.values())
print(f"{'kernel':90s} {'launches':>8s} {'total us':>10s} {'mean us':>9s} {'share':>6s}")
for k, v in sorted(tot.items(), key=lambda kv: -kv[1]):
    print(f"{k[:90]:90s} {n[k]:8d} {v:10.1f} {v/n[k]:9.2f} {100*v/s:5.1f}%")
print(f"window: {sum(n.values())} launches, {s:.1f} us ({unit})")
PY
