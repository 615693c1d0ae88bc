// The turbine command line: chat, generate, info, bench.
#include <cstdio>

#include "cli_common.hpp"

int main(int argc, char** argv) {
  using namespace turbine::cli;
  CLI::App app{"turbine: run large language models from C++ (chat, generate, info, bench)"};
  app.require_subcommand(1);
  CommonOptions o;

  auto* chat = app.add_subcommand("chat", "interactive chat with streaming output (/reset clears history, /exit quits)");
  std::string system_prompt;
  add_model_options(*chat, o);
  add_sampling_options(*chat, o);
  chat->add_option("--system", system_prompt, "system prompt");

  auto* gen = app.add_subcommand("generate", "one-shot generation for one or more prompts");
  std::vector<std::string> prompts;
  std::string prompts_file;
  bool json = false, raw = false;
  add_model_options(*gen, o);
  add_sampling_options(*gen, o);
  gen->add_option("-p,--prompt", prompts, "prompt (repeatable)");
  gen->add_option("-f,--file", prompts_file, "file with one prompt per line")->check(CLI::ExistingFile);
  gen->add_flag("--json", json, "print one JSON object per prompt");
  gen->add_flag("--raw", raw, "continue the text as is, without the chat template");

  auto* info = app.add_subcommand("info", "model config, tensor table and memory");
  bool tensors = false;
  add_model_options(*info, o);
  info->add_flag("--tensors", tensors, "list every tensor");

  auto* bench = app.add_subcommand("bench", "prefill and decode speed of a model");
  int64_t prompt_tokens = 128, gen_tokens = 128;
  int runs = 3;
  bool bench_json = false;
  add_model_options(*bench, o);
  bench->add_option("--prompt-tokens", prompt_tokens, "prompt length")->check(CLI::PositiveNumber);
  bench->add_option("--gen-tokens", gen_tokens, "tokens to generate")->check(CLI::PositiveNumber);
  bench->add_option("--runs", runs, "measured runs (after one warm-up)")->check(CLI::PositiveNumber);
  bench->add_flag("--json", bench_json, "print the result as JSON");

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
    if (chat->parsed()) run_chat(o, system_prompt);
    if (gen->parsed()) run_generate(o, prompts, prompts_file, json, raw);
    if (info->parsed()) run_info(o, tensors);
    if (bench->parsed()) run_bench(o, prompt_tokens, gen_tokens, runs, bench_json);
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "turbine: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
