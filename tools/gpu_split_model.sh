#!/usr/bin/env bash
# Splits the default model (98 MB, over the device tool's 64 MiB transfer) into .device/p0/part and
# .device/p1/part, and packs the headers the GPU machine may lack (Eigen, doctest, nlohmann-json,
# CLI11) into .device/carry/deps.tar.xz, for tools/gpu_session.sh (build carries p0, run carries p1).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
model=.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
[ -f "$model" ] || tools/fetch_model.sh
mkdir -p .device/p0 .device/p1 .device/carry
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
split -b 48m "$model" "$tmp/part."
mv "$tmp/part.aa" .device/p0/part
mv "$tmp/part.ab" .device/p1/part
mkdir -p "$tmp/deps/include" "$tmp/deps/share/cmake" "$tmp/deps/share/eigen3"
cp -r /usr/include/nlohmann /usr/include/CLI /usr/include/doctest /usr/include/eigen3 "$tmp/deps/include/"
cp -r /usr/share/cmake/nlohmann_json "$tmp/deps/share/cmake/"
cp -r /usr/share/eigen3/cmake "$tmp/deps/share/eigen3/"
tar -cJf .device/carry/deps.tar.xz -C "$tmp/deps" .
ls -l .device/p0/part .device/p1/part .device/carry/deps.tar.xz
