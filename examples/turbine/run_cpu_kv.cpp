// The CPU model types of the CLI with a quantized KV cache (kv::Int8, kv::Int4: quantized per token
// and head as the cache is written, int4 per group of 32 channels), for chat, generate, serve, eval
// ppl and bench throughput, in their own translation unit (the plain model's run_cpu.cpp keeps its
// compile time).
#include "commands.hpp"

namespace turbine::cli {

void run_on_cpu_kv(const Command& cmd, CommonOptions& o) {
  if (cmd.kv == "int8") return run_kv_command<Llama<f32, quant::None, kv::Int8, Cpu>>(cmd, o);
  check(cmd.kv == "int4", "--kv ", cmd.kv, " is not supported (supported: same, int8, int4)");
  run_kv_command<Llama<f32, quant::None, kv::Int4, Cpu>>(cmd, o);
}

}  // namespace turbine::cli
