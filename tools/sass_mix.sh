#!/usr/bin/env bash
# The SASS of a CUDA translation unit's kernels without a GPU: compiles FILE for sm_90a (or $ARCH)
# to a cubin, disassembles it with cuobjdump (the PyPI wheels nvidia-cuda-cuobjdump and
# nvidia-cuda-nvdisasm, fetched once into .cache/cuobjdump: this machine's toolkit has neither), and
# prints, for each kernel whose
# mangled name matches REGEX, its instruction count and the mix of opcodes; with SLOT=1 also the
# instructions between its first two HMMA groups of 8 (one chunk of the W4 GEMV's ring).
#   tools/sass_mix.sh FILE.cu REGEX        e.g. a file that instantiates gemv_w4 (see PERFORMANCE.md)
# The full listing is left in /tmp/sass_mix.sass.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ $# -ge 2 ] || { echo "usage: tools/sass_mix.sh FILE.cu KERNEL_REGEX"; exit 1; }
file=$1 re=$2
tools="$here/.cache/cuobjdump"
bin="$tools/nvidia/cu13/bin/cuobjdump"
if [ ! -x "$bin" ]; then
  mkdir -p "$tools"
  for pkg in nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm; do
    python3 -m pip download --quiet --no-deps "$pkg" -d "$tools" || { echo "could not fetch $pkg from PyPI"; exit 1; }
  done
  for whl in "$tools"/*.whl; do python3 -m zipfile -e "$whl" "$tools"; done
  chmod +x "$tools"/nvidia/cu13/bin/*
fi
nvcc -O3 -DNDEBUG -std=c++20 -gencode=arch=${ARCH:-compute_90a},code=${CODE:-sm_90a} -cubin \
  -diag-suppress=20012,20011,20014,20015 -I "$here/include" "$file" -o /tmp/sass_mix.cubin
PATH="$tools/nvidia/cu13/bin:$PATH" "$bin" -sass /tmp/sass_mix.cubin >/tmp/sass_mix.sass
awk -v re="$re" -v slot="${SLOT:-0}" '
  function report() {
    if (name == "") return
    printf "%s: %d instructions\n", name, total
    for (op in mix) printf "  %6d %s\n", mix[op], op | "sort -rn | head -20"
    close("sort -rn | head -20")
    if (slot && h2 > h1) printf "  one chunk (from HMMA 1 to HMMA 9): %d instructions\n", h2 - h1
  }
  /Function :/ { report(); delete mix; total = 0; h = 0; h1 = h2 = 0
                 name = ($0 ~ re) ? $3 : ""; next }
  name != "" && /^ +\/\*[0-9a-f]+\*\/ / {
    op = $2; if (op ~ /^@/) op = $3; sub(/\..*/, "", op); sub(/;$/, "", op)
    mix[op]++; total++
    if (op == "HMMA") { h++; if (h == 1) h1 = total; if (h == 9) h2 = total }
  }
  END { report() }' /tmp/sass_mix.sass
