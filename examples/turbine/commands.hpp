#pragma once
// The model-running subcommands as templates over the model type; each backend/precision
// combination instantiates them in its own translation unit (run_cpu.cpp, run_cuda.cu).
#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "bench_generation.hpp"
#include "bench_throughput.hpp"
#include "cli_common.hpp"
#include "eval_ppl.hpp"
#include "serve_model.hpp"

namespace turbine::cli {

template <class Model>
void run_chat(CommonOptions& o, const std::string& system_prompt) {
  const Colors color;
  const std::string path = resolve_model(o.model);
  std::fprintf(stderr, "%sloading %s ...%s\n", color.dim(), path.c_str(), color.reset());
  Pipeline<Model> pipe(path, pipeline_options(o));
  ChatSession<Model> session(pipe, system_prompt);
  std::fprintf(stderr, "%s%s: %lld layers, hidden %lld, chat template '%s', context %lld. Type /reset to clear the history, /exit to quit.%s\n",
               color.dim(), architecture_name(pipe.config().arch), static_cast<long long>(pipe.config().num_layers),
               static_cast<long long>(pipe.config().hidden_size), pipe.chat_template().c_str(),
               static_cast<long long>(pipe.context_size()), color.reset());
  std::string line;
  for (;;) {
    std::printf("%s>>> %s", color.user(), color.reset());
    std::fflush(stdout);
    if (!std::getline(std::cin, line)) break;
    if (line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      session.reset();
      std::printf("%s(history cleared)%s\n", color.dim(), color.reset());
      continue;
    }
    if (line.empty()) continue;
    std::printf("%s", color.assistant());
    try {
      const Response r = session.say(line, o.gen, [](std::string_view piece) {
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
        return true;
      });
      const double tps = r.decode_seconds > 0 ? static_cast<double>(r.tokens.size()) / r.decode_seconds : 0.0;
      std::printf("%s\n%s[%zu tokens, %.1f tokens/s, %s]%s\n", color.reset(), color.dim(), r.tokens.size(), tps,
                  finish_reason_name(r.finish_reason), color.reset());
    } catch (const Error& e) {  // e.g. the conversation outgrew the context: say so, keep chatting
      std::printf("%s\n", color.reset());
      std::fprintf(stderr, "turbine: %s (use /reset)\n", e.what());
    }
  }
  std::printf("\n");
}


template <class Model>
void run_generate(CommonOptions& o, std::vector<std::string> prompts, const std::string& prompts_file, bool json, bool raw) {
  if (!prompts_file.empty()) {
    std::ifstream in(prompts_file);
    check(in.good(), prompts_file, ": cannot read the prompts file");
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) prompts.push_back(line);
  }
  check(!prompts.empty(), "no prompt given (use -p TEXT or -f FILE)");
  if (o.gen.max_new_tokens == 512 && raw) o.gen.max_new_tokens = 128;
  Pipeline<Model> pipe(resolve_model(o.model), pipeline_options(o));
  for (size_t i = 0; i < prompts.size(); ++i) {
    const bool stream = !json;
    StreamCallback cb;
    if (stream) cb = [](std::string_view p) { std::fwrite(p.data(), 1, p.size(), stdout); std::fflush(stdout); return true; };
    const Response r = raw ? pipe.complete(prompts[i], o.gen, cb) : pipe.chat({{"user", prompts[i]}}, o.gen, cb);
    if (json) {
      nlohmann::json j = {{"prompt", prompts[i]},
                          {"text", r.text},
                          {"tokens", r.tokens},
                          {"prompt_tokens", r.prompt_tokens},
                          {"generated_tokens", r.tokens.size()},
                          {"finish_reason", finish_reason_name(r.finish_reason)},
                          {"prefill_seconds", r.prefill_seconds},
                          {"decode_seconds", r.decode_seconds}};
      std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    } else {
      std::printf("\n");
      if (i + 1 < prompts.size()) std::printf("---\n");
    }
  }
}


template <class Model>
void run_bench(CommonOptions& o, int64_t prompt_tokens, int64_t gen_tokens, int runs, bool json) {
  const std::string path = resolve_model(o.model);
  LoadedModel files = load_model(path);
  auto owned_model = make_model<Model>(weights_for(files.weights, pipeline_options(o)), o.tp);
  Model& model = *owned_model;
  const ModelConfig& c = model.config();
  check(prompt_tokens + gen_tokens <= c.max_position_embeddings, "--prompt-tokens + --gen-tokens (", prompt_tokens + gen_tokens,
        ") exceeds the model's context ", c.max_position_embeddings);
  std::mt19937 rng(0);
  std::uniform_int_distribution<int32_t> pick(100, static_cast<int32_t>(std::min<int64_t>(c.vocab_size, 30000)) - 1);
  std::vector<int32_t> prompt(static_cast<size_t>(prompt_tokens));
  for (auto& t : prompt) t = pick(rng);
  std::vector<double> prefill, decode;
  std::vector<float> logits;
  const Colors color;
  for (int run = -1; run < runs; ++run) {  // run -1 is the warm-up
    std::fprintf(stderr, "\r%sbench: %s %d/%d%s", color.dim(), run < 0 ? "warm-up" : "run", std::max(run + 1, 0), runs, color.reset());
    auto cache = model.new_cache(prompt_tokens + gen_tokens);
    const auto t0 = std::chrono::steady_clock::now();
    model.forward(cache, prompt, logits);
    const auto t1 = std::chrono::steady_clock::now();
    int32_t next = Sampler::argmax(logits);
    for (int64_t i = 0; i < gen_tokens; ++i) {
      model.forward(cache, std::span<const int32_t>(&next, 1), logits);
      next = Sampler::argmax(logits);
    }
    const auto t2 = std::chrono::steady_clock::now();
    if (run < 0) continue;
    prefill.push_back(prompt_tokens / std::chrono::duration<double>(t1 - t0).count());
    decode.push_back(gen_tokens / std::chrono::duration<double>(t2 - t1).count());
  }
  std::fprintf(stderr, "\n");
  auto median = [](std::vector<double> v) { std::sort(v.begin(), v.end()); return v[v.size() / 2]; };
  const double bytes = static_cast<double>(model.weights().matrix_bytes());
  const double dec = median(decode);
  if (json) {
    nlohmann::json j = {{"model", path}, {"threads", default_pool().size()}, {"prompt_tokens", prompt_tokens},
                        {"gen_tokens", gen_tokens}, {"runs", runs}, {"prefill_tokens_per_s", median(prefill)},
                        {"decode_tokens_per_s", dec}, {"weight_bytes", bytes}, {"decode_weight_GBps", dec * bytes / 1e9}};
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("model %s, %d threads, prompt %lld, generate %lld, median of %d runs\n", path.c_str(), default_pool().size(),
                (long long)prompt_tokens, (long long)gen_tokens, runs);
    std::printf("prefill %8.1f tokens/s\n", median(prefill));
    std::printf("decode  %8.1f tokens/s  (%.1f GB/s of weights streamed)\n", dec, dec * bytes / 1e9);
  }
}


/// The commands that take a quantized KV cache (--kv int8 / int4), for the model types that have one.
template <class Model>
void run_kv_command(const Command& cmd, CommonOptions& o) {
  switch (cmd.kind) {
    case Command::Chat: return run_chat<Model>(o, cmd.system_prompt);
    case Command::Generate: return run_generate<Model>(o, cmd.prompts, cmd.prompts_file, cmd.json, cmd.raw);
    case Command::EvalPpl: return run_eval_ppl<Model>(o, cmd);
    case Command::BenchThroughput: return run_bench_throughput<Model>(o, *cmd.throughput);
    case Command::Serve: return run_serve<Model>(o, *cmd.serve);
    default: fail("--kv ", cmd.kv, " is available to chat, generate, serve, eval ppl, bench throughput and bench generation (GPU)");
  }
}

/// Runs `cmd` with `Model`.

template <class Model>
void run_command(const Command& cmd, CommonOptions& o) {
  switch (cmd.kind) {
    case Command::Chat: return run_chat<Model>(o, cmd.system_prompt);
    case Command::Generate: return run_generate<Model>(o, cmd.prompts, cmd.prompts_file, cmd.json, cmd.raw);
    case Command::Bench: return run_bench<Model>(o, cmd.prompt_tokens, cmd.gen_tokens, cmd.runs, cmd.json);
    case Command::BenchGeneration: return run_bench_generation<Model>(o, cmd);
    case Command::EvalPpl: return run_eval_ppl<Model>(o, cmd);
    case Command::BenchThroughput: return run_bench_throughput<Model>(o, *cmd.throughput);
    case Command::Serve: return run_serve<Model>(o, *cmd.serve);
  }
}

}  // namespace turbine::cli
