#pragma once
// Rotary position embedding frequencies (Hugging Face semantics, including rope_scaling), shared by
// every backend. Rotation is "rotate half": dims i and i + head_dim/2 form a pair.
#include <cmath>
#include <cstdint>
#include <numbers>
#include <vector>

#include "../model/config.hpp"

namespace turbine {

/// inv_freq[i] for i in [0, head_dim/2), for a sequence whose total length is `seq_len`
/// (only dynamic NTK scaling depends on it). Computed in fp32 like transformers does.
inline std::vector<float> rope_inv_freq(const ModelConfig& c, int64_t seq_len) {
  const int64_t dim = c.head_dim;
  double base = c.rope_theta;
  const auto& s = c.rope_scaling;
  if (s.kind == RopeScaling::Kind::Dynamic && seq_len > c.max_position_embeddings) {
    const double ratio = s.factor * static_cast<double>(seq_len) / static_cast<double>(c.max_position_embeddings) - (s.factor - 1.0);
    base = base * std::pow(ratio, static_cast<double>(dim) / static_cast<double>(dim - 2));
  }
  std::vector<float> inv(static_cast<size_t>(dim / 2));
  for (int64_t i = 0; i < dim / 2; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(dim);
    inv[i] = 1.0f / std::pow(static_cast<float>(base), exponent);
  }
  if (s.kind == RopeScaling::Kind::Linear) {
    for (auto& f : inv) f /= s.factor;
  } else if (s.kind == RopeScaling::Kind::Llama3) {
    const float old_len = static_cast<float>(s.original_max_position_embeddings);
    const float low_wavelen = old_len / s.low_freq_factor;
    const float high_wavelen = old_len / s.high_freq_factor;
    for (auto& f : inv) {
      const float wavelen = 2.0f * std::numbers::pi_v<float> / f;
      if (wavelen > low_wavelen) {
        f = f / s.factor;
      } else if (wavelen >= high_wavelen) {  // medium band: interpolate
        const float smooth = (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        f = (1.0f - smooth) * f / s.factor + smooth * f;
      }
    }
  }
  return inv;
}

}  // namespace turbine
