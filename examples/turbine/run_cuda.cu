// The CUDA model types of the CLI (f16 and bf16), instantiated in their own translation unit; an
// AWQ directory runs its 4-bit weights as stored, on the W4A16 kernels (run_cuda_w4_g*.cu).
#include <filesystem>

#include <turbine/turbine.cuh>

#include "commands.hpp"

namespace turbine::cli {

void run_on_cuda_w4_g32(const Command& cmd, CommonOptions& o);
void run_on_cuda_w4_g64(const Command& cmd, CommonOptions& o);
void run_on_cuda_w4_g128(const Command& cmd, CommonOptions& o);
void run_on_cuda_kv(const Command& cmd, CommonOptions& o, int64_t awq_group);
void run_on_cuda_bench_quant(const Command& cmd, CommonOptions& o);

namespace {
// The group size of an AWQ directory's 4-bit weights (its config.json), 0 for anything else and
// for random weights (bench generation --random-weights, bench throughput --random-shape), which
// have no model file to look at (and need no default model).
int64_t awq_group_of(const Command& cmd, const std::string& model) {
  if ((cmd.kind == Command::BenchGeneration && cmd.gen_random) ||
      (cmd.kind == Command::BenchThroughput && cmd.throughput && !cmd.throughput->random_shape.empty()))
    return 0;
  const std::string path = resolve_model(model);
  const std::filesystem::path config = std::filesystem::path(path) / "config.json";
  if (!std::filesystem::is_directory(path) || !std::filesystem::exists(config)) return 0;
  return io::load_hf_config(config.string()).awq_group_size;
}
}  // namespace

void run_on_cuda(const Command& cmd, CommonOptions& o) {
  if (cmd.kind == Command::BenchGeneration && (cmd.gen_weights != "same" || cmd.kv != "same")) {
#ifdef TURBINE_CLI_NARROW_CUDA
    fail("bench generation --weights ", cmd.gen_weights, " --kv ", cmd.kv, " is not compiled into this turbine (it was ",
         "configured with TURBINE_CLI_NARROW_CUDA=ON; reconfigure with -DTURBINE_CLI_NARROW_CUDA=OFF)");
#else
    return run_on_cuda_bench_quant(cmd, o);
#endif
  }
  if (cmd.kv != "same") {  // chat, generate, serve, eval ppl, bench throughput (bench generation took its own path above)
#ifdef TURBINE_CLI_NARROW_CUDA
    fail("--kv ", cmd.kv, " on the GPU is not compiled into this turbine (it was configured with ",
         "TURBINE_CLI_NARROW_CUDA=ON; reconfigure with -DTURBINE_CLI_NARROW_CUDA=OFF)");
#else
    return run_on_cuda_kv(cmd, o, awq_group_of(cmd, o.model));
#endif
  }
  if (const int64_t group = awq_group_of(cmd, o.model); group > 0) {
    check(o.dtype == "f16", o.model, ": 4-bit (AWQ) weights run with f16 activations on the GPU (drop --dtype ", o.dtype, ")");
#ifdef TURBINE_CLI_NARROW_CUDA
    check(group == 128, o.model, ": group size ", group, " 4-bit weights on the GPU are not compiled into this turbine ",
          "(it was configured with TURBINE_CLI_NARROW_CUDA=ON; reconfigure with -DTURBINE_CLI_NARROW_CUDA=OFF)");
#else
    if (group == 32) return run_on_cuda_w4_g32(cmd, o);
    if (group == 64) return run_on_cuda_w4_g64(cmd, o);
#endif
    return run_on_cuda_w4_g128(cmd, o);  // load_hf_config accepts only 32, 64 and 128
  }
#ifdef TURBINE_CLI_NARROW_CUDA
  check(o.dtype != "bf16", "--dtype bf16 on the GPU is not compiled into this turbine (it was configured with ",
        "TURBINE_CLI_NARROW_CUDA=ON; reconfigure with -DTURBINE_CLI_NARROW_CUDA=OFF)");
#else
  if (o.dtype == "bf16") return run_command<Llama<bf16, quant::None, kv::Same, Cuda>>(cmd, o);
#endif
  return run_command<Llama<f16, quant::None, kv::Same, Cuda>>(cmd, o);
}

}  // namespace turbine::cli
