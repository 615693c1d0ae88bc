// The CPU model type of the CLI, instantiated in its own translation unit; eval ppl also runs the
// quantized KV caches (only the perplexity command, to keep this file's compile time down).
#include "commands.hpp"

namespace turbine::cli {

void run_on_cpu(const Command& cmd, CommonOptions& o) {
  if (cmd.kind == Command::EvalPpl && cmd.kv == "int8")
    return run_eval_ppl<Llama<f32, quant::None, kv::Int8, Cpu>>(o, cmd);
  if (cmd.kind == Command::EvalPpl && cmd.kv == "int4")
    return run_eval_ppl<Llama<f32, quant::None, kv::Int4, Cpu>>(o, cmd);
  run_command<CpuModel>(cmd, o);
}

}  // namespace turbine::cli
