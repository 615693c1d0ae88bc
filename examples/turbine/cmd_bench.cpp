// turbine bench: prefill and decode tokens/s on the CPU (median of runs after a warm-up).
#include <algorithm>
#include <nlohmann/json.hpp>
#include <random>

#include "cli_common.hpp"

namespace turbine::cli {

void run_bench(CommonOptions& o, int64_t prompt_tokens, int64_t gen_tokens, int runs, bool json) {
  const std::string path = resolve_model(o.model);
  LoadedModel files = load_model(path);
  CpuModel model(files.weights);
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

}  // namespace turbine::cli
