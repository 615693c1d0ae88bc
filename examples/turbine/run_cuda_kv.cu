// The CLI's CUDA model types with a quantized KV cache (kv::Int8, kv::Int4 with f16 activations; int8
// with 4-bit group-128 weights here, group 64 in run_cuda_kv_w4_g64.cu), for chat, generate, serve,
// eval ppl and bench throughput with --kv, in their own translation unit.
#include <turbine/turbine.cuh>

#include "commands.hpp"

namespace turbine::cli {

void run_on_cuda_kv_w4_g64(const Command& cmd, CommonOptions& o);

void run_on_cuda_kv(const Command& cmd, CommonOptions& o, int64_t awq_group) {
  check(cmd.kv == "int8" || cmd.kv == "int4", "--kv ", cmd.kv, " is not supported (supported: same, int8, int4)");
  check(o.dtype == "f16", "--kv ", cmd.kv, " on the GPU runs with f16 activations (drop --dtype ", o.dtype, ")");
  if (awq_group > 0) {
    check((awq_group == 128 || awq_group == 64) && cmd.kv == "int8", o.model, ": 4-bit weights of group ", awq_group,
          " with --kv ", cmd.kv, " on the GPU are not compiled into the turbine CLI (it has groups 128 and 64 with",
          " --kv int8; drop --kv, or compose Llama<f16, quant::Awq<4, ", awq_group, ">, kv::",
          cmd.kv == "int8" ? "Int8" : "Int4", ", Cuda> in your own program)");
    if (awq_group == 64) return run_on_cuda_kv_w4_g64(cmd, o);
    return run_kv_command<Llama<f16, quant::Awq<4, 128>, kv::Int8, Cuda>>(cmd, o);
  }
  if (cmd.kv == "int8") return run_kv_command<Llama<f16, quant::None, kv::Int8, Cuda>>(cmd, o);
  return run_kv_command<Llama<f16, quant::None, kv::Int4, Cuda>>(cmd, o);
}

}  // namespace turbine::cli
