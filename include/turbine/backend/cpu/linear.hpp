#pragma once
// y = x * W^T (+ bias) with W in its stored format. Rows of W are split across the thread pool;
// each thread dequantizes a tile of rows into fp32 (it stays in L1/L2) and multiplies it with
// every token's activations, so the weights are read from memory exactly once per call.
#include <Eigen/Core>
#include <algorithm>
#include <vector>

#include "../../core/thread_pool.hpp"
#include "../../core/weight_matrix.hpp"
#include "../../io/ggml_quants.hpp"
#include "dot.hpp"

namespace turbine::cpu {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Tokens of one matrix product in linear(): a call over more tokens runs one product per block
/// of kLinearTokenBlock, so a token's result depends only on the block it falls in and never on
/// how many tokens the call has beyond it (the prefix cache and chunked prefill rely on that).
inline constexpr int64_t kLinearTokenBlock = 64;

/// x: [tokens, w.cols], y: [tokens, w.rows], bias: [w.rows] or null.
inline void linear(const WeightMatrix& w, const float* x, int64_t tokens, float* y,
                   const float* bias = nullptr, ThreadPool& pool = default_pool()) {
  // Few tokens: fused dot per row and token (weights expanded in registers, read once from memory
  // per token, which stays in cache across the few tokens). Many tokens: dequantize a tile of rows
  // and let Eigen's GEMM reuse it across all tokens. A last block of few tokens takes the fused
  // path too, so its tokens get what a call of just them would give.
  constexpr int64_t kFusedMaxTokens = 4;
  // Tall tiles keep Eigen's GEMM efficient (its kernels want many columns); 64 rows of at most a
  // few thousand floats stay in L2.
  constexpr int64_t kTileRows = 64;
  const int64_t cols = w.cols;
  const bool fused = tokens <= kFusedMaxTokens;
  // The tokens that take the fused dot (all of a small call, or a last block of few tokens), with
  // x rearranged once for them where the format's dot wants that (prepare_x).
  const int64_t rest = tokens % kLinearTokenBlock;
  const int64_t fused_from = rest >= 1 && rest <= kFusedMaxTokens ? tokens - rest : tokens;
  const int64_t per_token = prepared_x_floats(cols);
  thread_local std::vector<float> prepared;
  prepared.resize(static_cast<size_t>((tokens - fused_from) * per_token));
  bool use_prepared = fused_from < tokens;
  for (int64_t t = fused_from; t < tokens && use_prepared; ++t)
    use_prepared = prepare_x(w.type, x + t * cols, cols, prepared.data() + (t - fused_from) * per_token);
  const float* prep = use_prepared ? prepared.data() : nullptr;
  auto fused_rows = [&](int64_t r0, int64_t r1, int64_t t0, int64_t t1, float* scratch) {
    for (int64_t r = r0; r < r1; ++r) {
      const float b = bias ? bias[r] : 0.0f;
      for (int64_t t = t0; t < t1; ++t)
        y[t * w.rows + r] = dot_row(w.type, w.row(r), x + t * cols, cols, scratch,
                                    prep ? prep + (t - fused_from) * per_token : nullptr) + b;
    }
  };
  pool.parallel_for(w.rows, [&](int64_t r0, int64_t r1) {
    thread_local std::vector<float> tile;
    tile.resize(static_cast<size_t>((fused ? 1 : kTileRows) * cols));
    if (fused) return fused_rows(r0, r1, 0, tokens, tile.data());
    thread_local std::vector<float> row;
    row.resize(static_cast<size_t>(cols));
    for (int64_t rb = r0; rb < r1; rb += kTileRows) {
      const int64_t nr = std::min(kTileRows, r1 - rb);
      const float* t = nullptr;
      if (w.type == StorageType::F32) {
        t = reinterpret_cast<const float*>(w.row(rb));
      } else {
        for (int64_t i = 0; i < nr; ++i) io::dequantize_row(w.type, w.row(rb + i), tile.data() + i * cols, cols);
        t = tile.data();
      }
      Eigen::Map<const RowMatrix> ts(t, nr, cols);
      for (int64_t tb = 0; tb < tokens; tb += kLinearTokenBlock) {
        const int64_t m = std::min(kLinearTokenBlock, tokens - tb);
        if (m <= kFusedMaxTokens) {
          fused_rows(rb, rb + nr, tb, tb + m, row.data());
          continue;
        }
        Eigen::Map<const RowMatrix> xs(x + tb * cols, m, cols);
        Eigen::Map<RowMatrix, 0, Eigen::OuterStride<>> ys(y + tb * w.rows + rb, m, nr, Eigen::OuterStride<>(w.rows));
        ys.noalias() = xs * ts.transpose();
        if (bias)
          for (int64_t tok = tb; tok < tb + m; ++tok)
            for (int64_t i = 0; i < nr; ++i) y[tok * w.rows + rb + i] += bias[rb + i];
      }
    }
  }, fused ? 8 : kTileRows);
}

/// Gathers embedding rows: out[t, :] = dequantize(table[ids[t], :]).
inline void embedding(const WeightMatrix& table, const int32_t* ids, int64_t tokens, float* out) {
  for (int64_t t = 0; t < tokens; ++t) {
    check(ids[t] >= 0 && ids[t] < table.rows, "token id ", ids[t], " is outside the vocabulary of ", table.rows);
    io::dequantize_row(table.type, table.row(ids[t]), out + t * table.cols, table.cols);
  }
}

}  // namespace turbine::cpu
