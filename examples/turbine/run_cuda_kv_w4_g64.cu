// The CLI's CUDA model type for 4-bit group-64 weights with an int8 KV cache (f16 activations): the
// group size turbine quantize picks where 128 does not divide the widths, as for the default model
// (hidden 576), in its own translation unit.
#include <turbine/turbine.cuh>

#include "commands.hpp"

namespace turbine::cli {

void run_on_cuda_kv_w4_g64(const Command& cmd, CommonOptions& o) {
  run_kv_command<Llama<f16, quant::Awq<4, 64>, kv::Int8, Cuda>>(cmd, o);
}

}  // namespace turbine::cli
