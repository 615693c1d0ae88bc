#pragma once
// Rotary position embedding frequencies (Hugging Face semantics, including rope_scaling), shared by
// every backend. Rotation is "rotate half": dims i and i + head_dim/2 form a pair.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <vector>

#include "../model/config.hpp"

namespace turbine {

namespace detail {

/// base^(-2i / dim) for i in [0, dim/2): the unscaled inverse frequencies, in fp32 like transformers.
inline std::vector<float> rope_base_inv_freq(double base, int64_t dim) {
  std::vector<float> inv(static_cast<size_t>(dim / 2));
  for (int64_t i = 0; i < dim / 2; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(dim);
    inv[i] = 1.0f / std::pow(static_cast<float>(base), exponent);
  }
  return inv;
}

/// Llama 3's rescaling (transformers' _compute_llama3_parameters), in place.
inline void apply_llama3_scaling(std::vector<float>& inv, const RopeScaling& s) {
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

}  // namespace detail

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
  std::vector<float> inv = detail::rope_base_inv_freq(base, dim);
  if (s.kind == RopeScaling::Kind::Linear) {
    for (auto& f : inv) f /= s.factor;
  } else if (s.kind == RopeScaling::Kind::Llama3) {
    detail::apply_llama3_scaling(inv, s);
  } else if (s.kind == RopeScaling::Kind::Factors) {
    for (size_t i = 0; i < inv.size() && i < s.freq_factors.size(); ++i) inv[i] /= s.freq_factors[i];
  }
  return inv;
}

/// The scaling that a GGUF file's per-frequency divisors (`rope_freqs.weight`, which llama.cpp's
/// converter writes for Hugging Face's llama3 rope_scaling) stand for, for a model of base
/// `rope_theta` and `head_dim`: None when every divisor is 1; Llama3 with its parameters when the
/// divisors are that formula's (so that config.json can say so again); else Factors, kept as given.
///
/// Llama 3's divisor is `factor` below the low-frequency edge, 1 above the high one, and between
/// them 1 / ((1 - s) / factor + s) with s = (original * inv_freq / 2pi - low) / (high - low).
/// Only the ratios original : low : high show in the divisors, so low is taken as 1 (Llama 3.1's
/// value); `s` is linear in inv_freq, fitted by least squares over the medium band.
inline RopeScaling rope_scaling_from_factors(double rope_theta, int64_t head_dim, const std::vector<float>& factors) {
  RopeScaling r;
  if (std::all_of(factors.begin(), factors.end(), [](float f) { return f == 1.0f; })) return r;
  r.kind = RopeScaling::Kind::Factors;
  r.freq_factors = factors;
  const std::vector<float> inv = detail::rope_base_inv_freq(rope_theta, head_dim);
  if (factors.size() != inv.size() || factors.back() <= 1.0f) return r;
  const double factor = factors.back();  // the lowest frequency is scaled fully in any real model
  double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (size_t i = 0; i < inv.size(); ++i) {
    const double f = factors[i];
    if (f <= 1.0 + 1e-6 || f >= factor * (1.0 - 1e-6)) continue;
    const double x = inv[i] / (2.0 * std::numbers::pi), y = (1.0 / f - 1.0 / factor) / (1.0 - 1.0 / factor);
    n += 1, sx += x, sy += y, sxx += x * x, sxy += x * y;
  }
  if (n < 2 || n * sxx - sx * sx <= 0) return r;
  const double slope = (n * sxy - sx * sy) / (n * sxx - sx * sx), intercept = (sy - slope * sx) / n;
  if (!(intercept < 0)) return r;
  RopeScaling l3;
  l3.kind = RopeScaling::Kind::Llama3;
  l3.factor = static_cast<float>(factor);
  l3.low_freq_factor = 1.0f;
  const double high = 1.0 - 1.0 / intercept, original = slope * (high - 1.0);
  l3.high_freq_factor = static_cast<float>(std::round(high * 1e4) / 1e4);
  l3.original_max_position_embeddings = std::llround(original);
  if (!(l3.high_freq_factor > 1.0f) || l3.original_max_position_embeddings <= 0) return r;
  // Accept the parameters only if they give back every divisor.
  std::vector<float> scaled = inv;
  detail::apply_llama3_scaling(scaled, l3);
  for (size_t i = 0; i < inv.size(); ++i)
    if (!(std::abs(inv[i] / scaled[i] / factors[i] - 1.0) <= 1e-5)) return r;  // fp32 rounding only (NaN fails)
  return l3;
}

}  // namespace turbine
