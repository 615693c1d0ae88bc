#!/usr/bin/env bash
# Packs this machine's cpp-httplib (Debian's split build: the header, the library and the brotli
# libraries it needs) with a CMake package file into .device/httplib/httplib.tar.xz, so that the GPU
# machine, which has no cpp-httplib, builds `turbine serve` and the HTTP tests. tools/gpu_session.sh
# unpacks it to /tmp/httplib when the build call carries .device/httplib.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
lib=$(pkg-config --variable=libdir cpp-httplib)
stage=$(mktemp -d)
mkdir -p "$stage/include" "$stage/lib/cmake/httplib"
cp "$(pkg-config --variable=includedir cpp-httplib)/httplib.h" "$stage/include/"
# Debian builds it with brotli support, so its header includes brotli/*.h (the GPU machine lacks them)
cp -r /usr/include/brotli "$stage/include/"
so=$(basename "$(readlink -f "$lib/libcpp-httplib.so")")
soname=$(objdump -p "$lib/libcpp-httplib.so" | awk '/SONAME/ {print $2}')
cp -L "$lib/libcpp-httplib.so" "$stage/lib/$soname"
for l in libbrotlidec.so.1 libbrotlienc.so.1 libbrotlicommon.so.1; do cp -L "/lib/x86_64-linux-gnu/$l" "$stage/lib/"; done
# The macros Debian built it with (they change httplib's classes): from its pkg-config file.
defs=$(pkg-config --cflags-only-other cpp-httplib | tr ' ' '\n' | sed -n 's/^-D//p' | paste -sd';')
cat >"$stage/lib/cmake/httplib/httplibConfig.cmake" <<CMAKE
# cpp-httplib $(pkg-config --modversion cpp-httplib) ($so), carried by tools/gpu_httplib_bundle.sh
get_filename_component(_httplib_prefix "\${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
add_library(httplib::httplib SHARED IMPORTED)
set_target_properties(httplib::httplib PROPERTIES
  IMPORTED_LOCATION "\${_httplib_prefix}/lib/$soname"
  INTERFACE_INCLUDE_DIRECTORIES "\${_httplib_prefix}/include"
  INTERFACE_COMPILE_DEFINITIONS "$defs"
  INTERFACE_LINK_OPTIONS "-Wl,-rpath,\${_httplib_prefix}/lib")
CMAKE
mkdir -p "$here/.device/httplib"
tar -cJf "$here/.device/httplib/httplib.tar.xz" -C "$stage" .
rm -rf "$stage"
ls -la "$here/.device/httplib/httplib.tar.xz"
