# Sourced by the one-call GPU scripts (gpu_quant_followup.sh): the repository root
# as the working directory, $out for results, $build (build-gpu), say() with seconds since start,
# the CUDA libraries on the loader path, the carried header packages (.device/carry/deps.tar.xz)
# unpacked, and the sm_90a Release build configured (exits on failure).
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
out="${OUT:-/tmp/gpu_out}"
build=build-gpu
mkdir -p "$out" /tmp/deps
t0=$(date +%s)
say() { echo "[$(($(date +%s) - t0)) s] $*"; }
. "$here/tools/gpu_env.sh"
tar -xJf .device/carry/deps.tar.xz -C /tmp/deps
gen=()
command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
cmake -S . -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DTURBINE_ENABLE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a \
  -DTURBINE_NATIVE=OFF -DCMAKE_PREFIX_PATH=/tmp/deps >"$out/configure.log" 2>&1 || { tail -20 "$out/configure.log"; exit 1; }
say "configure done"
