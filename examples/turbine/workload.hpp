#pragma once
// The ShareGPT-like workload of `turbine bench throughput` and `turbine bench serve`, synthetic so
// that it needs no download: input and output lengths drawn from log-normal distributions whose
// medians and spreads follow the ShareGPT conversations used by vLLM's and LMDeploy's benchmarks
// (long-tailed: most prompts are short, a few are long), clipped to [--min-len, --max-input] and
// [--min-len, --max-output] and to the context; prompt tokens are random ids from `ids` (the
// model's text does not change the work done). Input sigma 0.9, output sigma 0.8.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "cli_common.hpp"

namespace turbine::cli {

/// One request of the workload.
struct WorkloadJob {
  std::vector<int32_t> prompt;  ///< token ids
  int64_t output = 0;           ///< tokens to generate (ignore_eos)
};

/// The workload's length, seed, output and KV cache flags (shared by bench throughput and serve).
inline void add_workload_options(CLI::App& app, ThroughputOptions& t) {
  app.add_option("--input-median", t.input_median, "median prompt length (log-normal)")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--output-median", t.output_median, "median output length (log-normal)")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--max-input", t.max_input, "longest prompt")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--max-output", t.max_output, "longest output")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--min-len", t.min_len, "shortest prompt and output")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--seed", t.seed, "seed of the workload")->capture_default_str();
  app.add_flag("--json", t.json, "print the result as JSON");
  add_cache_options(app, t.cache);
}

/// `t.num_prompts` requests for a context of `ctx` tokens, prompt ids drawn from `ids`.
inline std::vector<WorkloadJob> sharegpt_like_workload(const ThroughputOptions& t, int64_t ctx, const std::vector<int32_t>& ids) {
  check(t.min_len <= t.max_input && t.min_len <= t.max_output, "--min-len ", t.min_len,
        " must not exceed --max-input and --max-output");
  check(t.min_len * 2 < ctx, "--min-len ", t.min_len, " does not fit the context of ", ctx, " tokens");
  check(!ids.empty(), "the workload needs token ids to draw prompts from");
  std::mt19937_64 rng(t.seed);
  std::lognormal_distribution<double> in_len(std::log(static_cast<double>(t.input_median)), 0.9),
      out_len(std::log(static_cast<double>(t.output_median)), 0.8);
  std::uniform_int_distribution<size_t> pick(0, ids.size() - 1);
  std::vector<WorkloadJob> jobs(static_cast<size_t>(t.num_prompts));
  for (WorkloadJob& j : jobs) {
    const int64_t n_in = std::clamp<int64_t>(std::llround(in_len(rng)), t.min_len, std::min(t.max_input, ctx / 2));
    const int64_t n_out = std::clamp<int64_t>(std::llround(out_len(rng)), t.min_len, std::min(t.max_output, ctx - n_in - 1));
    j.prompt.resize(static_cast<size_t>(n_in));
    for (auto& id : j.prompt) id = ids[pick(rng)];
    j.output = n_out;
  }
  return jobs;
}

}  // namespace turbine::cli
