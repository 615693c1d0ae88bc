#pragma once
// Applies rotary embedding in place to x: [tokens, heads, head_dim], token t at position pos0 + t.
#include <cmath>
#include <cstdint>
#include <vector>

namespace turbine::cpu {

inline void apply_rope(float* x, int64_t tokens, int64_t heads, int64_t head_dim, int64_t pos0,
                       const std::vector<float>& inv_freq) {
  const int64_t half = head_dim / 2;
  std::vector<float> cs(static_cast<size_t>(half)), sn(static_cast<size_t>(half));
  for (int64_t t = 0; t < tokens; ++t) {
    const float pos = static_cast<float>(pos0 + t);
    for (int64_t i = 0; i < half; ++i) {
      const float angle = pos * inv_freq[i];  // fp32 product, as transformers computes it
      cs[i] = std::cos(angle);
      sn[i] = std::sin(angle);
    }
    for (int64_t h = 0; h < heads; ++h) {
      float* v = x + (t * heads + h) * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const float a = v[i], b = v[i + half];
        v[i] = a * cs[i] - b * sn[i];
        v[i + half] = b * cs[i] + a * sn[i];
      }
    }
  }
}

}  // namespace turbine::cpu
