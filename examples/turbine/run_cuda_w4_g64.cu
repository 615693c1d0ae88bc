// The CLI's 4-bit CUDA model type for AWQ directories of group size 64 (W4A16 kernels, f16
// activations), in its own translation unit.
#include <turbine/turbine.cuh>

#include "commands.hpp"

namespace turbine::cli {

void run_on_cuda_w4_g64(const Command& cmd, CommonOptions& o) {
  run_command<Llama<f16, quant::Awq<4, 64>, kv::Same, Cuda>>(cmd, o);
}

}  // namespace turbine::cli
