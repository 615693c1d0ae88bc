#pragma once
// turbine eval ppl: perplexity of a model on a text file. The text is tokenized whole (with the
// BOS the tokenizer adds) and cut into consecutive windows of --ctx tokens; each window is one
// forward pass from an empty cache, and every token but the window's first is scored by the
// logits of the one before it: ppl = exp(mean of -log p(token)).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

#include "cli_common.hpp"

namespace turbine::cli {

/// -log softmax(logits)[target], computed stably in double.
inline double negative_log_likelihood(const float* logits, int64_t vocab, int32_t target) {
  float mx = logits[0];
  for (int64_t i = 1; i < vocab; ++i) mx = std::max(mx, logits[i]);
  double sum = 0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(double(logits[i]) - mx);
  return std::log(sum) + mx - logits[target];
}

template <class Model>
void run_eval_ppl(CommonOptions& o, const Command& cmd) {
  const std::string path = resolve_model(o.model);
  const Colors color;
  LoadedModel files = load_model(path);
  auto owned_model = make_model<Model>(weights_for(files.weights, pipeline_options(o)), o.tp);
  Model& model = *owned_model;
  const ModelConfig& c = model.config();
  check(cmd.eval_ctx >= 2 && cmd.eval_ctx <= c.max_position_embeddings, "--ctx ", cmd.eval_ctx,
        " must be between 2 and the model's context ", c.max_position_embeddings);
  std::vector<int32_t> ids = files.tokenizer->encode(read_text(cmd.eval_text));
  if (cmd.eval_skip_tokens > 0) {
    check(cmd.eval_skip_tokens < static_cast<int64_t>(ids.size()), "--skip-tokens ", cmd.eval_skip_tokens,
          " leaves nothing of the ", ids.size(), " tokens of ", cmd.eval_text);
    ids.erase(ids.begin(), ids.begin() + cmd.eval_skip_tokens);
  }
  if (cmd.eval_max_tokens > 0 && static_cast<int64_t>(ids.size()) > cmd.eval_max_tokens) ids.resize(cmd.eval_max_tokens);
  const int64_t windows = static_cast<int64_t>(ids.size()) / cmd.eval_ctx;
  check(windows >= 1, cmd.eval_text, ": ", ids.size(), " tokens is less than one window of --ctx ", cmd.eval_ctx);
  double nll = 0;
  int64_t scored = 0;
  std::vector<float> logits;
  auto cache = model.new_cache(cmd.eval_ctx);  // one cache, emptied for each window
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t w = 0; w < windows; ++w) {
    const std::span<const int32_t> win(ids.data() + w * cmd.eval_ctx, static_cast<size_t>(cmd.eval_ctx));
    cache.clear();
    model.forward(cache, win, logits, /*all_logits=*/true);
    for (int64_t t = 0; t + 1 < cmd.eval_ctx; ++t) {
      nll += negative_log_likelihood(logits.data() + t * c.vocab_size, c.vocab_size, win[static_cast<size_t>(t + 1)]);
      ++scored;
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "\r%seval ppl: window %lld/%lld, ppl %.4f, %.0f tokens/s%s", color.dim(), (long long)(w + 1),
                 (long long)windows, std::exp(nll / static_cast<double>(scored)),
                 static_cast<double>((w + 1) * cmd.eval_ctx) / secs, color.reset());
  }
  std::fprintf(stderr, "\n");
  const double ppl = std::exp(nll / static_cast<double>(scored));
  if (cmd.json) {
    nlohmann::json j = {{"model", path}, {"text", cmd.eval_text}, {"kv", cmd.kv}, {"ctx", cmd.eval_ctx}, {"windows", windows},
                        {"scored_tokens", scored}, {"ppl", ppl}, {"mean_nll", nll / static_cast<double>(scored)}};
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("perplexity %.4f over %lld tokens (%lld windows of %lld) of %s, KV cache %s\n", ppl, (long long)scored,
                (long long)windows, (long long)cmd.eval_ctx, cmd.eval_text.c_str(), cmd.kv.c_str());
  }
}

}  // namespace turbine::cli
