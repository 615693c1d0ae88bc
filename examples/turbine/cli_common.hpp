#pragma once
// Pieces shared by the turbine subcommands: model resolution, sampling flags, terminal colors.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>

#include <turbine/turbine.hpp>

namespace turbine::cli {

/// The model type the CLI runs on the CPU: fp32 compute, weights as stored in the file.
using CpuModel = Llama<f32, quant::None, kv::Same, Cpu>;

inline const char* kDefaultModelFile = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// MODEL argument, else $TURBINE_MODEL, else the default model fetched by tools/fetch_model.sh.
inline std::string resolve_model(const std::string& given) {
  if (!given.empty()) return given;
  if (const char* env = std::getenv("TURBINE_MODEL")) return env;
  const std::string p = std::string(TURBINE_DEFAULT_MODEL_DIR) + "/" + kDefaultModelFile;
  if (std::filesystem::exists(p)) return p;
  fail("no model given and the default model is not at ", p, " (run tools/fetch_model.sh, or pass a .gguf file or Hugging Face directory)");
}

/// Reads a whole text file (bounded: 256 MiB).
inline std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  check(f.good(), path, ": cannot read the text file");
  std::ostringstream ss;
  ss << f.rdbuf();
  std::string s = ss.str();
  check(s.size() <= (size_t(256) << 20), path, ": ", s.size(), " bytes is too large (at most 256 MiB)");
  check(!s.empty(), path, ": the text file is empty");
  return s;
}

struct CommonOptions {
  std::string model;
  std::string chat_template;
  std::string device = "auto";
  std::string dtype = "f16";
  int64_t ctx_size = 4096;
  int threads = 0;
  int tp = 1;  // tensor-parallel ranks (simulated on the CPU)
  bool lm_head_int4 = false;  // round the LM head to 4 bits at load
  GenerationConfig gen;
};

inline void add_model_options(CLI::App& app, CommonOptions& o) {
  app.add_option("model,-m,--model", o.model,
                 "model: a .gguf file or a Hugging Face directory, as the first argument or after -m as in llama.cpp "
                 "(default: SmolLM2-135M-Instruct)");
  app.add_option("--chat-template", o.chat_template, "chat template: chatml, llama2, llama3, internlm2, smollm (default: from the model)");
  app.add_option("--device", o.device, "where to run: auto (the GPU if there is one), cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  app.add_option("--dtype", o.dtype, "GPU precision: f16 or bf16 (the CPU computes in f32)")->check(CLI::IsMember({"f16", "bf16"}));
  app.add_option("--ctx-size", o.ctx_size, "context length in tokens (capped at the model's)")->check(CLI::PositiveNumber);
  app.add_option("--threads", o.threads, "CPU threads (default: all cores)")->check(CLI::NonNegativeNumber);
  app.add_option("--tp", o.tp, "tensor parallelism: split the model this many ways by heads, MLP columns and vocabulary "
                 "(on the CPU the ranks run in turn, simulated; see docs/ARCHITECTURE.md)")->check(CLI::PositiveNumber);
}

/// --lm-head-int4, for the commands that build a model to run (not info, quantize or bench serve).
inline void add_lm_head_option(CLI::App& app, CommonOptions& o) {
  app.add_flag("--lm-head-int4", o.lm_head_int4, "round the LM head to 4 bits at load (group 128, or 64/32 where the "
               "hidden size needs it): less memory and, on a 4-bit model on the GPU, a faster decode step; costs "
               "some accuracy (docs/QUANTIZATION.md)");
}

/// The serving engine's KV cache flags (turbine serve, turbine bench throughput).
struct CacheOptions {
  double max_entry_count = 0.8;  // fraction of available memory after the weights
  double gib = 0;                // or a size in GiB
  int64_t block_size = 64;
  bool prefix_caching = false;
};

inline void add_cache_options(CLI::App& app, CacheOptions& c) {
  app.add_option("--cache-max-entry-count", c.max_entry_count, "KV cache budget: this fraction of the memory available after the weights")
      ->capture_default_str()->check(CLI::Range(0.0, 1.0));
  app.add_option("--cache-gib", c.gib, "KV cache budget in GiB (instead of --cache-max-entry-count)")->check(CLI::NonNegativeNumber);
  app.add_option("--cache-block-size", c.block_size, "positions per KV cache block")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_flag("--enable-prefix-caching", c.prefix_caching, "reuse the KV blocks of earlier prompts that start the same way");
}

/// Fills the KV fields of `e` for `model`; prints the budget on stderr.
template <class Model>
void apply_cache_options(const CacheOptions& o, const Model& model, EngineOptions& e) {
  e.cache_block_size = o.block_size;
  e.cache_blocks = kv_cache_blocks_for_budget(model, o.block_size, o.max_entry_count, o.gib);
  e.prefix_caching = o.prefix_caching;
  const double gib = static_cast<double>(e.cache_blocks) * static_cast<double>(o.block_size) *
                     static_cast<double>(kv_bytes_per_position(model)) / static_cast<double>(1ull << 30);
  std::fprintf(stderr, "KV cache: %lld blocks of %lld tokens (%.2f GiB, %lld tokens)%s\n", static_cast<long long>(e.cache_blocks),
               static_cast<long long>(o.block_size), gib, static_cast<long long>(e.cache_blocks * o.block_size),
               o.prefix_caching ? ", prefix caching on" : "");
}

inline void add_sampling_options(CLI::App& app, CommonOptions& o) {
  auto& g = o.gen;
  app.add_option("-n,--max-new-tokens", g.max_new_tokens, "most tokens to generate")->check(CLI::NonNegativeNumber);
  app.add_option("--temperature", g.temperature, "sampling temperature; 0 is greedy")->check(CLI::Range(0.0, 100.0));
  app.add_option("--top-k", g.top_k, "keep the k most likely tokens (0: off)")->check(CLI::NonNegativeNumber);
  app.add_option("--top-p", g.top_p, "nucleus sampling mass (1: off)")->check(CLI::Range(0.0, 1.0));
  app.add_option("--min-p", g.min_p, "drop tokens below min-p times the best (0: off)")->check(CLI::Range(0.0, 1.0));
  app.add_option("--repetition-penalty", g.repetition_penalty, "penalty for repeated tokens (1: off)")->check(CLI::PositiveNumber);
  app.add_option("--seed", g.seed, "random seed for sampling");
  app.add_option("--stop", g.stop, "stop string (repeatable)");
}

/// Applies --threads (before the thread pool starts).
inline void apply_runtime_options(const CommonOptions& o) {
  if (o.threads > 0) setenv("TURBINE_THREADS", std::to_string(o.threads).c_str(), 1);
}

inline PipelineOptions pipeline_options(const CommonOptions& o) {
  return PipelineOptions{o.chat_template, o.ctx_size, o.tp, o.lm_head_int4};
}

/// ANSI colors only when writing to a terminal and NO_COLOR is unset.
struct Colors {
  bool on = isatty(fileno(stdout)) && !std::getenv("NO_COLOR");
  const char* user() const { return on ? "\033[1;32m" : ""; }
  const char* assistant() const { return on ? "\033[36m" : ""; }
  const char* dim() const { return on ? "\033[2m" : ""; }
  const char* reset() const { return on ? "\033[0m" : ""; }
};

/// A subcommand that runs a model, with its own arguments.
struct ThroughputOptions;
struct ServeOptions;
struct Command {
  enum Kind { Chat, Generate, Bench, BenchGeneration, EvalPpl, BenchThroughput, Serve } kind = Chat;
  const ThroughputOptions* throughput = nullptr;  // BenchThroughput
  const ServeOptions* serve = nullptr;            // Serve
  std::string system_prompt;
  std::vector<std::string> prompts;
  std::string prompts_file;
  bool json = false, raw = false;
  int64_t prompt_tokens = 128, gen_tokens = 128;
  int runs = 3;
  // bench generation (bench_generation.hpp)
  std::vector<int> gen_concurrency{1, 16, 64};
  std::vector<std::string> gen_io{"128/128", "128/2048", "2048/128"};
  bool gen_random = false;
  std::string gen_shape, gen_json;
  int gen_runs = 1;
  std::string gen_weights = "same";  // same, or w4: 4-bit group-128 weights rounded to nearest at load (GPU)
  // eval ppl (eval_ppl.hpp)
  std::string eval_text, kv = "same";
  int64_t eval_ctx = 512, eval_max_tokens = 0, eval_skip_tokens = 0;
};

void run_info(CommonOptions& o, bool tensors);
/// Options of `turbine quantize` (cmd_quantize.cpp).
struct QuantizeCommand {
  std::string method = "awq", output, calib;
  int w_bits = 4;
  int64_t group_size = 0, calib_samples = 64, calib_seqlen = 512;  // group 0: 128, else the largest that fits
  bool no_clip = false, no_refine = false, no_norm_weighting = false, no_mlp_loss = false, feedback = false, sequential = false,
       refine_to_clipped = false;
};
void add_quantize_options(CLI::App& app, QuantizeCommand& q);
/// Options of `turbine bench throughput` (cmd_bench_throughput.cpp).
struct ThroughputOptions {
  int64_t num_prompts = 1000, max_concurrent = 16, max_prefill_tokens = 512;
  int64_t input_median = 180, output_median = 160, max_input = 2048, max_output = 1024, min_len = 4;
  uint64_t seed = 0;
  bool json = false;
  std::string random_shape;  // random weights of this shape instead of a model file
  CacheOptions cache;
};
void add_throughput_options(CLI::App& app, ThroughputOptions& t);
void run_quantize(CommonOptions& o, const QuantizeCommand& q);
void run_on_cpu(const Command& cmd, CommonOptions& o);
void run_on_cpu_kv(const Command& cmd, CommonOptions& o);  // --kv int8 / int4: chat, generate, serve, eval ppl, bench throughput (run_cpu_kv.cpp)
void run_on_cpu_tp(const Command& cmd, CommonOptions& o);  // --tp N > 1: simulated ranks (run_cpu_tp.cpp)
void run_on_cuda(const Command& cmd, CommonOptions& o);  // defined only in CUDA builds
/// True if this build has the CUDA backend and a GPU is present.
bool cuda_available();

}  // namespace turbine::cli
