// turbine bench throughput: its flags (the run itself: bench_throughput.hpp, per model type).
#include "cli_common.hpp"
#include "workload.hpp"

namespace turbine::cli {

void add_throughput_options(CLI::App& app, ThroughputOptions& t) {
  app.add_option("--num-prompts", t.num_prompts, "requests in the run")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--max-concurrent", t.max_concurrent, "sequences the engine runs at once")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--max-prefill-tokens", t.max_prefill_tokens, "prompt tokens per engine step")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--random-shape", t.random_shape, "random weights of a published shape instead of MODEL: smollm2-135m, internlm2-1.8b, llama2-7b, llama3-8b");
  add_workload_options(app, t);
}

}  // namespace turbine::cli
