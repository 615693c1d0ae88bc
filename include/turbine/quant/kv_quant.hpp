#pragma once
// KV-cache quantization (kv::Int8, kv::Int4): asymmetric, one scale and one minimum per token, KV
// head and group of K::group channels (0: the whole head), computed as the cache is written. x ~ lo + q * scale, q in [0, 2^bits - 1],
// scale = (max - min) / (2^bits - 1). kv_round_trip() is the CPU reference: it replaces each
// head vector by what a quantized cache gives back when read, so that the fp32 cache of the CPU
// backend computes exactly the attention of an int8 / int4 cache (it does not save memory there).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "../core/error.hpp"
#include "schemes.hpp"

namespace turbine::quant {

/// Levels of a KV scheme's integers (255 for Int8, 15 for Int4; 0 for an unquantized cache).
template <KvScheme K>
constexpr int kv_levels() {
  if constexpr (K::quantized) return (1 << K::bits) - 1;
  else return 0;
}

/// Quantizes one head vector x[n] to `levels` + 1 integers and writes back the dequantized values.
inline void kv_round_trip_head(float* x, int64_t n, int levels) {
  float lo = x[0], hi = x[0];
  for (int64_t i = 1; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  const float scale = (hi - lo) / static_cast<float>(levels);
  if (!(scale > 0.0f) || !std::isfinite(scale)) return;  // a constant (or non-finite) vector stays as is
  const float inv = 1.0f / scale;
  for (int64_t i = 0; i < n; ++i) {
    const float q = std::clamp(std::nearbyint((x[i] - lo) * inv), 0.0f, static_cast<float>(levels));
    x[i] = lo + q * scale;
  }
}

/// Channels per scale and minimum of scheme K in a head of head_dim: K::group, or the whole head
/// when K::group is 0 or at least head_dim.
template <KvScheme K>
constexpr int64_t kv_group_size(int64_t head_dim) {
  return K::group > 0 && K::group < head_dim ? K::group : head_dim;
}

/// rows: [tokens, kv_heads, head_dim] keys or values as written to the cache; each group of
/// kv_group_size<K>(head_dim) channels of each (token, head) is quantized alone; no-op for kv::Same.
template <KvScheme K>
void kv_round_trip(float* rows, int64_t tokens, int64_t kv_heads, int64_t head_dim) {
  if constexpr (K::quantized) {
    const int64_t g = kv_group_size<K>(head_dim);
    check(head_dim % g == 0, "KV cache ", K::name, ": group of ", g, " channels does not divide head_dim ", head_dim);
    for (int64_t i = 0; i < tokens * kv_heads * head_dim; i += g) kv_round_trip_head(rows + i, g, kv_levels<K>());
  }
}

}  // namespace turbine::quant
