#pragma once
// The decode loop of one sequence: feed new prompt tokens, then sample until a stop condition,
// streaming complete UTF-8 text through a callback that can also cancel.
#include <algorithm>
#include <chrono>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "../tokenizer/tokenizer.hpp"
#include "generation_config.hpp"
#include "sampler.hpp"
#include "stop_checker.hpp"

namespace turbine {

/// Receives each new piece of text; return false to stop generating.
using StreamCallback = std::function<bool(std::string_view piece)>;

/// Why generation ended: a stop token or string, max_new_tokens or the context, or the callback.
enum class FinishReason { Stop, Length, Cancelled };

/// "stop", "length" or "cancelled" (the OpenAI names).
inline const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::Cancelled: return "cancelled";
  }
  return "?";
}

/// One generated reply and what it cost.
struct Response {
  std::string text;             ///< the reply (without a stop string or end-of-sequence token)
  std::vector<int32_t> tokens;  ///< generated ids (including a final end-of-sequence id, if any)
  FinishReason finish_reason = FinishReason::Length;  ///< why it ended
  int64_t prompt_tokens = 0;    ///< tokens of the prompt, cached ones included
  double prefill_seconds = 0;   ///< time to process the prompt (to the first token's logits)
  double decode_seconds = 0;    ///< time from then to the end
};

/// A model that picks tokens on its device (CudaTransformer): it names its sampling parameters.
template <class Model>
concept DeviceSampling = requires { typename Model::SamplingParams; };

/// The device sampler's settings for `cfg`, drawing token number `step` of a sequence.
template <DeviceSampling Model>
typename Model::SamplingParams device_sampling_params(const Model& model, const GenerationConfig& cfg, uint64_t step) {
  typename Model::SamplingParams p;
  p.temperature = cfg.greedy() ? 0.0f : cfg.temperature;
  // top_k >= vocab keeps every token: the same as off
  p.top_k = cfg.top_k >= model.config().vocab_size ? 0 : static_cast<int>(cfg.top_k);
  p.top_p = cfg.top_p;
  p.min_p = cfg.min_p;
  p.repetition_penalty = cfg.repetition_penalty;
  p.seed = cfg.seed;
  p.step = step;
  return p;
}

/// Feeds history.back() to the model and picks the next token: on the device where the model can
/// (only the id crosses to the host; the draw is a function of (seed, step) there), else from the
/// logits on the host with `sampler`.
template <class Model, class Cache>
int32_t decode_next(Model& model, Cache& cache, const std::vector<int32_t>& history, Sampler& sampler,
                    std::vector<float>& logits, const GenerationConfig& cfg, uint64_t step) {
  if constexpr (DeviceSampling<Model>) {
    const typename Model::SamplingParams p = device_sampling_params(model, cfg, step);
    Cache* one = &cache;
    const std::span<const int32_t> h(history);
    int32_t id = 0;
    model.decode_batch_sample(std::span<Cache* const>(&one, 1), h.last(1), std::span<const typename Model::SamplingParams>(&p, 1),
                              std::span<const std::span<const int32_t>>(&h, 1), &id);
    return id;
  } else {
    model.forward(cache, std::span<const int32_t>(&history.back(), 1), logits);
    return sampler.sample(logits, history);
  }
}

/// Runs `prompt` (the whole token sequence of the request) and generates its continuation.
/// `cached` mirrors the tokens already in `cache`: the longest common prefix with `prompt` is
/// reused and the rest recomputed, so a chat turn only pays for its new tokens. `Model` is a
/// Transformer; `eos` are the tokens that end the sequence.
template <class Model, class Cache>
Response generate_sequence(Model& model, Cache& cache, std::vector<int32_t>& cached, std::span<const int32_t> prompt,
                           const Tokenizer& tok, const GenerationConfig& cfg, std::span<const int32_t> eos,
                           const StreamCallback& on_text = {}) {
  cfg.validate();
  using clock = std::chrono::steady_clock;
  Response r;
  r.prompt_tokens = static_cast<int64_t>(prompt.size());
  check(!prompt.empty(), "the prompt is empty");
  check(r.prompt_tokens < cache.capacity(), "prompt of ", r.prompt_tokens, " tokens does not fit the context of ",
        cache.capacity(), " tokens (shorten it or raise --ctx-size)");
  // Reuse the cached prefix, but always recompute at least the last prompt token for its logits.
  size_t common = 0;
  const size_t limit = std::min<size_t>({cached.size(), static_cast<size_t>(cache.length()), prompt.size() - 1});
  while (common < limit && cached[common] == prompt[common]) ++common;
  cache.truncate(static_cast<int64_t>(common));
  cached.resize(common);
  std::vector<float> logits;
  const auto t0 = clock::now();
  model.forward(cache, prompt.subspan(common), logits);
  cached.insert(cached.end(), prompt.begin() + static_cast<std::ptrdiff_t>(common), prompt.end());
  const auto t1 = clock::now();
  r.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();

  std::vector<int32_t> history(prompt.begin(), prompt.end());  // for the repetition penalty
  Sampler sampler(cfg);
  IncrementalDecoder decoder(tok);
  StopChecker stops(cfg.stop);
  auto emit = [&](const std::string& piece) {
    if (piece.empty()) return true;
    r.text += piece;
    return on_text ? on_text(piece) : true;
  };
  auto is_stop_token = [&](int32_t id) {
    if (std::find(cfg.stop_token_ids.begin(), cfg.stop_token_ids.end(), id) != cfg.stop_token_ids.end()) return true;
    return !cfg.ignore_eos && std::find(eos.begin(), eos.end(), id) != eos.end();
  };
  r.finish_reason = FinishReason::Length;
  int32_t id = cfg.max_new_tokens > 0 ? sampler.sample(logits, history) : 0;  // from the prompt's logits
  for (int64_t i = 0; i < cfg.max_new_tokens; ++i) {
    r.tokens.push_back(id);
    history.push_back(id);
    if (is_stop_token(id)) {
      r.finish_reason = FinishReason::Stop;
      break;
    }
    if (!emit(stops.push(decoder.push(id)))) {
      r.finish_reason = FinishReason::Cancelled;
      break;
    }
    if (stops.stopped()) {
      r.finish_reason = FinishReason::Stop;
      break;
    }
    if (i + 1 == cfg.max_new_tokens || cache.length() + 1 >= cache.capacity()) break;  // "length"
    cached.push_back(id);
    id = decode_next(model, cache, history, sampler, logits, cfg, static_cast<uint64_t>(i + 1));
  }
  if (r.finish_reason != FinishReason::Cancelled && !stops.stopped()) emit(stops.push(decoder.flush()) + stops.flush());
  r.decode_seconds = std::chrono::duration<double>(clock::now() - t1).count();
  return r;
}

}  // namespace turbine
