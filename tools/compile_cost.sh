#!/usr/bin/env bash
# Compile cost of one model type: seconds to compile one translation unit and the size of its
# object, with the flags of a Release build (-O3; -march=native for the CPU as the project's own
# programs use it; nvcc for the given CUDA architectures). Figures go to docs/PERFORMANCE.md.
#   tools/compile_cost.sh [CUDA_ARCHS...]     (default: 90a, then 80 90a)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
src=$root/tools/compile_cost
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
includes=(-I"$root/include" -isystem /usr/include/eigen3)
cxx=${CXX:-g++}
nvcc=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}

measure() {  # name, command...: wall and CPU seconds (CPU is less sensitive to a busy machine)
  local name=$1; shift
  local TIMEFORMAT='%R %U %S' times real user sys
  times=$( { time "$@" >"$out/log" 2>&1; } 2>&1 ) || { cat "$out/log"; exit 1; }
  read -r real user sys <<<"$times"
  printf '%-40s %7s s wall %7s s CPU %9s KiB\n' "$name" "$real" "$(awk "BEGIN { print $user + $sys }")" \
    "$(( $(stat -c %s "$out/obj.o") / 1024 ))"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$($cxx --version | head -1); $("$nvcc" --version 2>/dev/null | grep release | sed 's/.*release/nvcc/' || echo 'no nvcc')"
measure "cpu_model.cpp ($cxx -O3 -march=native)" \
  "$cxx" -std=c++20 -O3 -DNDEBUG -march=native "${includes[@]}" -c "$src/cpu_model.cpp" -o "$out/obj.o"
measure "app_extern.cpp ($cxx -O3 -march=native)" \
  "$cxx" -std=c++20 -O3 -DNDEBUG -march=native "${includes[@]}" -c "$src/app_extern.cpp" -o "$out/obj.o"
if [ ! -x "$nvcc" ]; then
  echo "no nvcc: CUDA figures skipped"
  exit 0
fi
archsets=("$@")
[ ${#archsets[@]} -eq 0 ] && archsets=("90a" "80 90a")
for archs in "${archsets[@]}"; do
  gencode=()
  for a in $archs; do gencode+=("--generate-code=arch=compute_$a,code=[compute_$a,sm_$a]"); done
  nvflags=(-std=c++20 -O3 -DNDEBUG -diag-suppress=20012,20011,20014,20015 "${gencode[@]}" "${includes[@]}" -isystem "$(dirname "$nvcc")/../include")
  # --threads: nvcc compiles the architectures in parallel on this machine's cores.
  measure "cuda_model.cu (nvcc, sm ${archs// /+})" "$nvcc" "${nvflags[@]}" --threads "$(nproc)" -c "$src/cuda_model.cu" -o "$out/obj.o"
  measure "cuda_extern.cu (nvcc, sm ${archs// /+})" "$nvcc" "${nvflags[@]}" --threads "$(nproc)" -c "$src/cuda_extern.cu" -o "$out/obj.o"
done
