// `turbine bench generation --weights w4 --kv int8|int4` on the GPU: the fp16 / W4A16 / W4A16 + KV
// int8 grid of the quantization issue, with random or stored weights rounded to 4 bits (group 128)
// at load. Only the benchmark is instantiated for these model types (one translation unit).
#include <turbine/turbine.cuh>

#include "commands.hpp"

namespace turbine::cli {

void run_on_cuda_bench_quant(const Command& cmd, CommonOptions& o) {
  check(o.dtype == "f16", "bench generation --weights ", cmd.gen_weights, " --kv ", cmd.kv,
        " runs with f16 activations on the GPU (drop --dtype ", o.dtype, ")");
  const bool w4 = cmd.gen_weights == "w4";
  if (!w4 && cmd.kv == "int8") return run_bench_generation<Llama<f16, quant::None, kv::Int8, Cuda>>(o, cmd);
  if (!w4 && cmd.kv == "int4") return run_bench_generation<Llama<f16, quant::None, kv::Int4, Cuda>>(o, cmd);
  if (w4 && cmd.kv == "same") return run_bench_generation<Llama<f16, quant::Rtn<4, 128>, kv::Same, Cuda>>(o, cmd);
  if (w4 && cmd.kv == "int8") return run_bench_generation<Llama<f16, quant::Rtn<4, 128>, kv::Int8, Cuda>>(o, cmd);
  fail("bench generation --weights w4 --kv ", cmd.kv, " is not compiled into turbine (supported with w4: --kv same or int8)");
}

}  // namespace turbine::cli
