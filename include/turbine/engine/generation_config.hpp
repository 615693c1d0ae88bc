#pragma once
// GenerationConfig: how one request is decoded. Defaults follow LMDeploy/transformers.
#include <cstdint>
#include <string>
#include <vector>

#include "../core/error.hpp"

namespace turbine {

/// How one request is decoded. The defaults are greedy decoding of at most 512 tokens.
struct GenerationConfig {
  int64_t max_new_tokens = 512;         ///< the most tokens to generate
  float temperature = 0.0f;             ///< 0: greedy
  int64_t top_k = 0;                    ///< keep the k likeliest tokens; 0: off
  float top_p = 1.0f;                   ///< keep the smallest set with this probability mass; 1: off
  float min_p = 0.0f;                   ///< drop tokens below min_p times the likeliest; 0: off
  float repetition_penalty = 1.0f;      ///< penalize tokens already in the sequence; 1: off
  uint64_t seed = 0;                    ///< seed of the sampler's random numbers
  std::vector<std::string> stop;        ///< stop strings (the text stops before them)
  std::vector<int32_t> stop_token_ids;  ///< in addition to the model's end-of-sequence tokens
  bool ignore_eos = false;              ///< keep going past end-of-sequence tokens (benchmarks)

  bool greedy() const { return temperature <= 0.0f || top_k == 1; }  ///< whether sampling is argmax

  /// Fails with a message naming the field if a value is out of range.
  void validate() const {
    check(max_new_tokens >= 0, "max_new_tokens must be >= 0 (got ", max_new_tokens, ")");
    check(temperature >= 0.0f && temperature <= 100.0f, "temperature must be in [0, 100] (got ", temperature, ")");
    check(top_k >= 0, "top_k must be >= 0 (got ", top_k, ")");
    check(top_p > 0.0f && top_p <= 1.0f, "top_p must be in (0, 1] (got ", top_p, ")");
    check(min_p >= 0.0f && min_p <= 1.0f, "min_p must be in [0, 1] (got ", min_p, ")");
    check(repetition_penalty > 0.0f, "repetition_penalty must be > 0 (got ", repetition_penalty, ")");
    for (const auto& s : stop) check(!s.empty(), "stop strings must not be empty");
  }
};

}  // namespace turbine
