// The CUDA model types of the CLI (f16 and bf16), instantiated in their own translation unit.
#include <turbine/turbine.cuh>

#include "commands.hpp"

namespace turbine::cli {

void run_on_cuda(const Command& cmd, CommonOptions& o) {
  check(cmd.kind != Command::EvalPpl || cmd.eval_kv == "same", "--kv ", cmd.eval_kv,
        ": the CUDA backend has no quantized KV cache yet (use --device cpu)");
  if (o.dtype == "bf16") return run_command<Llama<bf16, quant::None, kv::Same, Cuda>>(cmd, o);
  return run_command<Llama<f16, quant::None, kv::Same, Cuda>>(cmd, o);
}

}  // namespace turbine::cli
