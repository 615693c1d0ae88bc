#pragma once
// Picks the next token from logits: repetition penalty, temperature, top-k, top-p, min-p, then a
// draw from a seeded generator (or argmax when greedy). Host-side; the CUDA backend has its own.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <span>
#include <unordered_set>
#include <vector>

#include "generation_config.hpp"

namespace turbine {

/// Picks the next token from logits by the settings of a GenerationConfig (one per sequence: it
/// owns the random state seeded by `cfg.seed`).
class Sampler {
 public:
  /// A sampler for `cfg` (copied).
  explicit Sampler(const GenerationConfig& cfg) : cfg_(cfg), rng_(cfg.seed) {}

  /// `logits` is modified in place. `history` is every token of the sequence so far (prompt and
  /// generated), used by the repetition penalty.
  int32_t sample(std::span<float> logits, std::span<const int32_t> history) {
    if (cfg_.repetition_penalty != 1.0f) apply_repetition_penalty(logits, history, cfg_.repetition_penalty);
    if (cfg_.greedy()) return argmax(logits);
    const float inv_t = 1.0f / cfg_.temperature;
    const int64_t n = static_cast<int64_t>(logits.size());
    // Candidates sorted by logit, cut by top-k first so the sort is partial when k is small.
    int64_t k = cfg_.top_k > 0 ? std::min<int64_t>(cfg_.top_k, n) : n;
    idx_.resize(static_cast<size_t>(n));
    std::iota(idx_.begin(), idx_.end(), 0);
    auto by_logit = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
    std::partial_sort(idx_.begin(), idx_.begin() + k, idx_.end(), by_logit);
    idx_.resize(static_cast<size_t>(k));
    probs_.resize(idx_.size());
    const float mx = logits[idx_[0]];
    double sum = 0.0;
    for (size_t i = 0; i < idx_.size(); ++i) sum += probs_[i] = std::exp((logits[idx_[i]] - mx) * inv_t);
    for (auto& p : probs_) p = static_cast<float>(p / sum);
    size_t keep = idx_.size();
    if (cfg_.top_p < 1.0f) {  // smallest prefix whose mass reaches top_p
      double acc = 0.0;
      for (size_t i = 0; i < keep; ++i) {
        acc += probs_[i];
        if (acc >= cfg_.top_p) { keep = i + 1; break; }
      }
    }
    if (cfg_.min_p > 0.0f) {  // drop tokens less likely than min_p times the best one
      const float floor = cfg_.min_p * probs_[0];
      size_t i = 1;
      while (i < keep && probs_[i] >= floor) ++i;
      keep = i;
    }
    std::discrete_distribution<size_t> pick(probs_.begin(), probs_.begin() + static_cast<std::ptrdiff_t>(keep));
    return idx_[pick(rng_)];
  }

  /// The index of the largest logit (the first of equals).
  static int32_t argmax(std::span<const float> logits) {
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }

  /// transformers' rule: a seen token's logit is divided by the penalty if positive, else multiplied.
  static void apply_repetition_penalty(std::span<float> logits, std::span<const int32_t> history, float penalty) {
    std::unordered_set<int32_t> seen(history.begin(), history.end());
    for (int32_t id : seen) {
      if (id < 0 || static_cast<size_t>(id) >= logits.size()) continue;
      float& l = logits[id];
      l = l > 0 ? l / penalty : l * penalty;
    }
  }

 private:
  GenerationConfig cfg_;
  std::mt19937_64 rng_;
  std::vector<int32_t> idx_;
  std::vector<float> probs_;
};

}  // namespace turbine
