// The turbine command line: chat, generate, info, bench, eval, quantize, serve.
#include <cstdio>

#include "cli_common.hpp"
#include "serve_command.hpp"

int main(int argc, char** argv) {
  using namespace turbine::cli;
  CLI::App app{"turbine: run large language models from C++ (chat, generate, info, bench, eval, quantize, serve)"};
  app.require_subcommand(1);
  CommonOptions o;
  Command cmd;

  auto* chat = app.add_subcommand("chat", "interactive chat with streaming output (/reset clears history, /exit quits)");
  add_model_options(*chat, o);
  add_lm_head_option(*chat, o);
  add_sampling_options(*chat, o);
  chat->add_option("--system", cmd.system_prompt, "system prompt");
  chat->add_option("--kv", cmd.kv, "KV cache: same (the compute precision), int8 or int4 (quantized as the cache is written, per token and head; int4 per group of 32 channels)")
      ->check(CLI::IsMember({"same", "int8", "int4"}));

  auto* gen = app.add_subcommand("generate", "one-shot generation for one or more prompts");
  add_model_options(*gen, o);
  add_lm_head_option(*gen, o);
  add_sampling_options(*gen, o);
  gen->add_option("-p,--prompt", cmd.prompts, "prompt (repeatable)");
  gen->add_option("-f,--file", cmd.prompts_file, "file with one prompt per line")->check(CLI::ExistingFile);
  gen->add_flag("--json", cmd.json, "print one JSON object per prompt");
  gen->add_flag("--raw", cmd.raw, "continue the text as is, without the chat template");
  gen->add_option("--kv", cmd.kv, "KV cache: same (the compute precision), int8 or int4 (quantized as the cache is written, per token and head; int4 per group of 32 channels)")
      ->check(CLI::IsMember({"same", "int8", "int4"}));

  auto* info = app.add_subcommand("info", "model config, tensor table and memory");
  bool tensors = false;
  add_model_options(*info, o);
  info->add_flag("--tensors", tensors, "list every tensor");

  auto* bench = app.add_subcommand("bench", "prefill and decode speed of a model");
  add_model_options(*bench, o);
  add_lm_head_option(*bench, o);
  bench->add_option("--prompt-tokens", cmd.prompt_tokens, "prompt length")->check(CLI::PositiveNumber);
  bench->add_option("--gen-tokens", cmd.gen_tokens, "tokens to generate")->check(CLI::PositiveNumber);
  bench->add_option("--runs", cmd.runs, "measured runs (after one warm-up)")->check(CLI::PositiveNumber);
  bench->add_flag("--json", cmd.json, "print the result as JSON");
  auto* bench_gen = bench->add_subcommand("generation", "LMDeploy-style static grid: first-token and per-token latency, tokens/s, memory");
  add_model_options(*bench_gen, o);
  add_lm_head_option(*bench_gen, o);
  bench_gen->add_flag("--random-weights", cmd.gen_random, "random weights of a known shape instead of a model file (needs --shape)");
  bench_gen->add_option("--shape", cmd.gen_shape, "shape for --random-weights: smollm2-135m, internlm2-1.8b, llama2-7b, llama3-8b");
  bench_gen->add_option("--concurrency", cmd.gen_concurrency, "sequences decoded together (comma-separated list)")->delimiter(',');
  bench_gen->add_option("--io", cmd.gen_io, "PROMPT/OUTPUT token counts (comma-separated list, e.g. 128/128,2048/128)")->delimiter(',');
  bench_gen->add_option("--runs", cmd.gen_runs, "timed runs per configuration (after an untimed one)")->check(CLI::PositiveNumber);
  bench_gen->add_option("--json", cmd.gen_json, "also write the results to this JSON file");
  bench_gen->add_option("--weights", cmd.gen_weights, "same (as stored or made), or w4: 4-bit group-128 weights rounded to nearest at load (W4A16; GPU)")
      ->check(CLI::IsMember({"same", "w4"}));
  bench_gen->add_option("--kv", cmd.kv, "KV cache: same (the compute precision), int8 or int4 (GPU)")->check(CLI::IsMember({"same", "int8", "int4"}));

  auto* bench_tp = bench->add_subcommand("throughput", "offline serving throughput: N ShareGPT-like requests through the continuous-batching engine (GPU or CPU)");
  ThroughputOptions tp;
  add_model_options(*bench_tp, o);
  add_lm_head_option(*bench_tp, o);
  add_throughput_options(*bench_tp, tp);
  bench_tp->add_option("--kv", cmd.kv, "KV cache: same (the compute precision), int8 or int4 (on the GPU stored quantized: the same --cache-gib holds about 1.9x / 3.2x the positions of f16)")
      ->check(CLI::IsMember({"same", "int8", "int4"}));

  auto* bench_serve = bench->add_subcommand("serve", "the throughput workload over HTTP at a set concurrency (a server of --url, or one started here)");
  BenchServeOptions bs;
  add_model_options(*bench_serve, o);
  add_bench_serve_options(*bench_serve, bs);

  auto* eval = app.add_subcommand("eval", "measure a model: perplexity on a text file");
  eval->require_subcommand(1);
  auto* eval_ppl = eval->add_subcommand("ppl", "perplexity on a text file, in consecutive windows of --ctx tokens");
  add_model_options(*eval_ppl, o);
  add_lm_head_option(*eval_ppl, o);
  eval_ppl->add_option("--text", cmd.eval_text, "the text file (UTF-8)")->required()->check(CLI::ExistingFile);
  eval_ppl->add_option("--ctx", cmd.eval_ctx, "tokens per window (each window starts from an empty cache)")->check(CLI::PositiveNumber);
  eval_ppl->add_option("--max-tokens", cmd.eval_max_tokens, "use at most this many tokens of the text (0: all)")->check(CLI::NonNegativeNumber);
  eval_ppl->add_option("--skip-tokens", cmd.eval_skip_tokens, "skip this many tokens at the start (e.g. the calibration part)")->check(CLI::NonNegativeNumber);
  eval_ppl->add_option("--kv", cmd.kv, "KV cache: same (the compute precision), int8 or int4 (per token and head; int4 per group of 32 channels)")
      ->check(CLI::IsMember({"same", "int8", "int4"}));
  eval_ppl->add_flag("--json", cmd.json, "print the result as JSON");

  auto* quantize = app.add_subcommand("quantize", "4-bit weights (AWQ or round-to-nearest) written as an AutoAWQ-layout Hugging Face directory");
  QuantizeCommand qc;
  add_model_options(*quantize, o);
  add_quantize_options(*quantize, qc);

  auto* serve = app.add_subcommand("serve", "OpenAI-compatible HTTP server with continuous batching (GPU or CPU)");
  ServeOptions serve_opts;
  add_model_options(*serve, o);
  add_lm_head_option(*serve, o);
  add_serve_options(*serve, serve_opts);
  serve->add_option("--kv", cmd.kv, "KV cache: same (the compute precision), int8 or int4 (on the GPU stored quantized: the same --cache-gib holds about 1.9x / 3.2x the positions of f16)")
      ->check(CLI::IsMember({"same", "int8", "int4"}));

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {  // one line, like every other turbine error
    std::fprintf(stderr, "turbine: error: %s (see turbine --help)\n", e.what());
    return e.get_exit_code() ? e.get_exit_code() : 2;
  }
  try {
    apply_runtime_options(o);
    if (quantize->parsed()) { run_quantize(o, qc); return 0; }
    if (bench_serve->parsed()) { run_bench_serve(o, bs); return 0; }
    if (info->parsed()) {
      run_info(o, tensors);
      return 0;
    }
    cmd.kind = chat->parsed() ? Command::Chat : gen->parsed() ? Command::Generate : bench_gen->parsed() ? Command::BenchGeneration
             : eval_ppl->parsed() ? Command::EvalPpl : serve->parsed() ? Command::Serve
             : bench_tp->parsed() ? Command::BenchThroughput : Command::Bench;
    cmd.serve = &serve_opts;
    cmd.throughput = &tp;
    const bool gpu = o.device == "cuda" || (o.device == "auto" && cuda_available());
    if (o.device == "cuda")
      turbine::check(cuda_available(), "--device cuda: ",
#ifdef TURBINE_WITH_CUDA
                     "no CUDA device is available (use --device cpu)"
#else
                     "this turbine was built without CUDA (configure with -DTURBINE_ENABLE_CUDA=ON where nvcc is installed)"
#endif
      );
    // Tensor parallelism on GPUs needs NCCL across devices, which this build does not have yet;
    // on the CPU the ranks are simulated (the numbers N devices would compute).
    turbine::check(!(gpu && o.tp > 1), "--tp ", o.tp, " on the GPU: multi-GPU tensor parallelism (NCCL) is not built yet; ",
                   "--device cpu --tp ", o.tp, " runs the sharded model with simulated ranks");
    if (gpu) run_on_cuda(cmd, o);
    else if (o.tp > 1) run_on_cpu_tp(cmd, o);
    else run_on_cpu(cmd, o);
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "turbine: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
