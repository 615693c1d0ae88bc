// The CLI's tensor-parallel model type (--tp N on the CPU: N simulated ranks, see
// model/tensor_parallel.hpp), in its own translation unit so it compiles beside run_cpu.cpp.
#include "commands.hpp"

namespace turbine::cli {

void run_on_cpu_tp(const Command& cmd, CommonOptions& o) {
  check(cmd.kv == "same" || cmd.kind == Command::BenchGeneration, "--kv ", cmd.kv, " runs unsplit: leave out --tp");
  run_command<TensorParallel<Spec<f32>>>(cmd, o);
}

}  // namespace turbine::cli
