#!/usr/bin/env bash
# Installs the Debian packages turbine builds with (compiler, CMake, Eigen, doctest, Google Benchmark,
# nlohmann-json, cpp-httplib, CLI11, Doxygen for the API reference test). Skips apt when everything
# is already there.
set -euo pipefail
pkgs=(g++ cmake make pkg-config python3-pip libeigen3-dev doctest-dev libbenchmark-dev nlohmann-json3-dev libcpp-httplib-dev libcli11-dev doxygen)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -eq 0 ]; then
  echo "build dependencies already installed"
else
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  echo "installing: ${missing[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The OpenAI Python client, for tests/serve/openai_client_test.py (which is skipped without it).
python3 -c "import openai" 2>/dev/null || python3 -m pip install --quiet openai ||
  echo "warning: could not install the openai Python package; the serve/openai_client test will be skipped"
