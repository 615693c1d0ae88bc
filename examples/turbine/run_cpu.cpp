// The CPU model type of the CLI, instantiated in its own translation unit; a quantized KV cache
// (--kv int8 / int4) goes to run_cpu_kv.cpp.
#include "commands.hpp"

namespace turbine::cli {

void run_on_cpu(const Command& cmd, CommonOptions& o) {
  if (cmd.kv != "same" && cmd.kind != Command::BenchGeneration) return run_on_cpu_kv(cmd, o);
  run_command<CpuModel>(cmd, o);
}

}  // namespace turbine::cli
