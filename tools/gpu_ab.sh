#!/usr/bin/env bash
# On the GPU machine: the working tree against a baseline that differs only in the files under
# .device/base (same relative paths; fill it with `tools/gpu_ab.sh base COMMIT FILE...` here).
#   tools/gpu_ab.sh base COMMIT FILE...   (here) .device/base gets COMMIT's version of each FILE
#   tools/gpu_ab.sh build TARGET...       (GPU) builds TARGETs of the baseline in /tmp/ab_base/build-gpu
#                                         (configured as tools/gpu_session.sh does; run that for this tree)
#   tools/gpu_ab.sh bench NAME CMD...     (GPU) runs CMD with @B@ replaced by the baseline's build dir,
#                                         then by this tree's (build-gpu); logs to $OUT/ab_NAME_{base,new}.log
#                                         (always base first: repeat the call to see whether order matters)
# Carry .device/carry and .device/base.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
mode=${1:?"usage: tools/gpu_ab.sh base|build|bench ..."}
shift
out="${OUT:-/tmp/gpu_out}"
. "$here/tools/gpu_env.sh"
case "$mode" in
base)
  commit=${1:?"tools/gpu_ab.sh base COMMIT FILE..."}
  shift
  rm -rf .device/base
  for f in "$@"; do
    mkdir -p ".device/base/$(dirname "$f")"
    git show "$commit:$f" >".device/base/$f" || exit 1
  done
  echo "baseline: $commit's $*"
  ;;
build)
  [ $# -ge 1 ] || { echo "tools/gpu_ab.sh build TARGET..."; exit 1; }
  [ -d .device/base ] || { echo "no .device/base: run tools/gpu_ab.sh base COMMIT FILE... and carry it"; exit 1; }
  mkdir -p /tmp/deps && tar -xJf .device/carry/deps.tar.xz -C /tmp/deps
  rm -rf /tmp/ab_base && mkdir -p /tmp/ab_base
  tar --exclude=./build-gpu --exclude=./.device/p0 --exclude=./.device/p1 --exclude=./.cache -cf - . | tar -xf - -C /tmp/ab_base
  cp -r .device/base/. /tmp/ab_base/
  gen=()
  command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
  cmake -S /tmp/ab_base -B /tmp/ab_base/build-gpu "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DTURBINE_ENABLE_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90a -DTURBINE_NATIVE=OFF -DCMAKE_PREFIX_PATH=/tmp/deps >/tmp/ab_base_configure.log 2>&1 ||
    { tail -20 /tmp/ab_base_configure.log; exit 1; }
  cmake --build /tmp/ab_base/build-gpu -j"$(nproc)" --target "$@" >/tmp/ab_base_build.log 2>&1
  rc=$?
  echo "baseline build rc $rc"
  [ "$rc" -ne 0 ] && grep -E "error|FAILED" /tmp/ab_base_build.log | head -20
  exit "$rc"
  ;;
bench)
  name=${1:?"tools/gpu_ab.sh bench NAME CMD..."}
  shift
  mkdir -p "$out"
  for side in base new; do
    dir=build-gpu
    [ "$side" = base ] && dir=/tmp/ab_base/build-gpu
    "${@//@B@/$dir}" >"$out/ab_${name}_$side.log" 2>&1
    echo "$name $side rc $?"
  done
  ;;
*) echo "tools/gpu_ab.sh: unknown mode '$mode' (base, build or bench)"; exit 1 ;;
esac
