# Sourced by the scripts that run on the GPU machine: the CUDA libraries on the loader path,
# find_ncu, which prints Nsight Compute's path (nothing when it is not installed), and
# make_gpu_test_models.
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib; do
  [ -d "$d" ] && export LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"
done
find_ncu() { command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1; }
# make_gpu_test_models DIR LOG: the engine suites' random transformers models (head_dim 64, which
# the GPU's rotary kernel takes; a 256-token prompt) in DIR, the script's output in LOG.
make_gpu_test_models() {
  TINY_OUT="$1" TINY_PROMPT=256 \
    TINY_SIZES='{"vocab_size": 512, "hidden_size": 256, "intermediate_size": 512, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64}' \
    python3 tools/make_tiny_models.py >"$2" 2>&1
}
# start_nvcc_session: the common start of the lean nvcc scripts (gpu_w4_quick.sh, gpu_persistent.sh),
# run from the repository root: $out (OUT, else /tmp/gpu_out), say (messages with the seconds since
# the start), the GPU's name, and the carried headers (.device/carry) unpacked into /tmp/deps.
start_nvcc_session() {
  out="${OUT:-/tmp/gpu_out}"
  mkdir -p "$out" /tmp/deps
  t0=$(date +%s)
  nvidia-smi -L
  tar -xJf .device/carry/deps.tar.xz -C /tmp/deps
  say() { echo "[$(($(date +%s) - t0)) s] $*"; }  # defined here, not at the top: other scripts have their own
}
