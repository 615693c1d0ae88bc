#pragma once
// Causal grouped-query attention of `tokens` new queries against a KV cache in fp32.
// Query t sits at position pos0 + t and sees cache positions [lo, pos0 + t] where lo is 0 or
// the start of the sliding window. The cache is read through a block table (PagedKv): position p
// is row p % block_size of block p / block_size; a contiguous cache is one block.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "../../core/thread_pool.hpp"

namespace turbine::cpu {

/// The sizes of one attention call.
struct AttentionShape {
  int64_t heads = 0;     ///< query heads
  int64_t kv_heads = 0;  ///< key/value heads (a divisor of `heads`)
  int64_t head_dim = 0;  ///< elements of one head
  int64_t sliding_window = 0;  ///< positions a query sees, itself included; 0: unlimited
};

/// One layer's keys and values as blocks of positions: k[i], v[i] are [block_size, kv_heads,
/// head_dim] rows of positions [i * block_size, (i + 1) * block_size).
struct PagedKv {
  const float* const* k = nullptr;  ///< [blocks] key rows of each block
  const float* const* v = nullptr;  ///< [blocks] value rows of each block
  int64_t block_size = 0;           ///< positions per block
};

namespace detail {
/// a . b over n floats in eight independent lanes (the compiler turns them into one vector
/// register without reordering any lane's sum), then the lanes added.
inline float dot_lanes(const float* a, const float* b, int64_t n) {
  float lane[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) lane[j] += a[i + j] * b[i + j];
  float d = ((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7]));
  for (; i < n; ++i) d += a[i] * b[i];
  return d;
}
}  // namespace detail

/// q: [tokens, heads, head_dim]; kv: the layer's cache; out: [tokens, heads, head_dim].
inline void attention(const float* q, const PagedKv& kv, int64_t tokens, int64_t pos0, const AttentionShape& s, float* out,
                      ThreadPool& pool = default_pool()) {
  const int64_t group = s.heads / s.kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  const int64_t kv_stride = s.kv_heads * s.head_dim;
  const int64_t bs = kv.block_size;
  // Calls f(row pointer offset, position) for positions [first, last], a block at a time.
  auto for_rows = [&](int64_t first, int64_t last, const float* const* blocks, int64_t head_off, auto&& f) {
    for (int64_t p = first; p <= last;) {
      const int64_t b = p / bs, end = std::min(last + 1, (b + 1) * bs);
      const float* row = blocks[b] + (p - b * bs) * kv_stride + head_off;
      for (; p < end; ++p, row += kv_stride) f(row, p);
    }
  };
  pool.parallel_for(tokens * s.heads, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> scores;
    for (int64_t job = begin; job < end; ++job) {
      const int64_t t = job / s.heads, h = job % s.heads, kvh = h / group;
      const int64_t last = pos0 + t;
      const int64_t first = s.sliding_window > 0 ? std::max<int64_t>(0, last - s.sliding_window + 1) : 0;
      const float* qv = q + (t * s.heads + h) * s.head_dim;
      scores.resize(static_cast<size_t>(last - first + 1));
      float mx = -std::numeric_limits<float>::infinity();
      for_rows(first, last, kv.k, kvh * s.head_dim, [&](const float* kr, int64_t p) {
        const float d = detail::dot_lanes(qv, kr, s.head_dim) * scale;
        scores[p - first] = d;
        mx = std::max(mx, d);
      });
      float sum = 0.f;
      for (auto& sc : scores) {
        sc = std::exp(sc - mx);
        sum += sc;
      }
      float* o = out + (t * s.heads + h) * s.head_dim;
      std::fill(o, o + s.head_dim, 0.f);
      for_rows(first, last, kv.v, kvh * s.head_dim, [&](const float* vr, int64_t p) {
        const float w = scores[p - first] / sum;
        for (int64_t i = 0; i < s.head_dim; ++i) o[i] += w * vr[i];
      });
    }
  });
}

/// q: [tokens, heads, head_dim]; k, v: [positions, kv_heads, head_dim] (a contiguous cache);
/// out: [tokens, heads, head_dim].
inline void attention(const float* q, const float* k, const float* v, int64_t tokens, int64_t pos0,
                      const AttentionShape& s, float* out, ThreadPool& pool = default_pool()) {
  const PagedKv one{&k, &v, std::numeric_limits<int64_t>::max()};
  attention(q, one, tokens, pos0, s, out, pool);
}

}  // namespace turbine::cpu
