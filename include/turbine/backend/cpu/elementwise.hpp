#pragma once
// Row-wise and element-wise ops of the decoder on fp32 activations.
#include <cmath>
#include <cstdint>

namespace turbine::cpu {

/// y[t, :] = x[t, :] / sqrt(mean(x[t, :]^2) + eps) * gamma. x and y may alias.
inline void rms_norm(const float* x, const float* gamma, int64_t tokens, int64_t dim, float eps, float* y) {
  for (int64_t t = 0; t < tokens; ++t) {
    const float* xr = x + t * dim;
    float* yr = y + t * dim;
    float ss = 0.f;
    for (int64_t i = 0; i < dim; ++i) ss += xr[i] * xr[i];
    const float inv = 1.0f / std::sqrt(ss / static_cast<float>(dim) + eps);
    for (int64_t i = 0; i < dim; ++i) yr[i] = (xr[i] * inv) * gamma[i];
  }
}

/// x += y over n elements (the residual stream).
inline void add_inplace(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

/// out[i] = silu(gate[i]) * up[i]; silu(g) = g / (1 + exp(-g)).
inline void silu_mul(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

/// out[i] = gelu_tanh(gate[i]) * up[i] (for MLP variants that use GELU).
inline void gelu_mul(const float* gate, const float* up, int64_t n, float* out) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = 0.5f * g * (1.0f + std::tanh(kSqrt2OverPi * (g + 0.044715f * g * g * g))) * up[i];
  }
}

}  // namespace turbine::cpu
