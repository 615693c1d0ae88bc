#pragma once
// Tensor-parallel sharding of a model's weights, as LMDeploy's --tp and Megatron split them:
//   column-parallel  wq, wk, wv (by heads) and w_gate, w_up (by MLP columns): a rank's rows;
//   row-parallel     wo and w_down: a rank's input columns, so each rank's output is a partial
//                    sum that an all-reduce adds up;
//   vocab-parallel   the embedding and the LM head: a rank's vocabulary rows.
// Norms are replicated. GQA models whose KV heads do not divide by the rank count replicate each
// KV head on the ranks whose query heads use it (the rank count must then be a multiple of them).
#include <cstring>
#include <memory>
#include <vector>

#include "../core/error.hpp"
#include "../io/ggml_quants.hpp"
#include "weights.hpp"

namespace turbine {

/// A half-open range [begin, end) of rows, columns, heads or vocabulary entries.
struct ShardRange {
  int64_t begin = 0;  ///< the first index
  int64_t end = 0;    ///< one past the last
  int64_t size() const { return end - begin; }  ///< how many
};

/// What rank `rank` of `ranks` holds of a model: its heads, KV heads, MLP columns and vocabulary rows.
struct ShardPlan {
  int rank = 0;             ///< this shard's rank
  int ranks = 1;            ///< ranks in all (--tp)
  ShardRange heads;         ///< query heads
  ShardRange kv_heads;      ///< key/value heads (one replicated head when ranks > num_kv_heads)
  ShardRange intermediate;  ///< MLP columns
  ShardRange vocab;         ///< embedding and LM head rows

  /// The plan of `rank` for a model of config `c` split `ranks` ways; fails naming --tp when the
  /// heads cannot be split.
  static ShardPlan make(const ModelConfig& c, int rank, int ranks) {
    check(ranks >= 1, "--tp must be at least 1 (got ", ranks, ")");
    check(rank >= 0 && rank < ranks, "tensor parallel rank ", rank, " is outside 0..", ranks - 1);
    check(c.num_heads % ranks == 0, "--tp ", ranks, ": the model's ", c.num_heads,
          " attention heads do not split evenly (use a --tp that divides ", c.num_heads, ")");
    check(c.num_kv_heads % ranks == 0 || ranks % c.num_kv_heads == 0, "--tp ", ranks, ": the model's ",
          c.num_kv_heads, " key/value heads neither split evenly nor replicate evenly (use a --tp that divides ",
          c.num_kv_heads, " or is a multiple of it)");
    check(c.intermediate_size >= ranks && c.vocab_size >= ranks, "--tp ", ranks, " is larger than the model");
    auto even = [&](int64_t n) { return ShardRange{n * rank / ranks, n * (rank + 1) / ranks}; };
    ShardPlan p;
    p.rank = rank;
    p.ranks = ranks;
    p.heads = even(c.num_heads);
    if (c.num_kv_heads % ranks == 0) {
      p.kv_heads = even(c.num_kv_heads);
    } else {  // ranks / num_kv_heads consecutive ranks share (a copy of) one KV head
      const int64_t kv = rank / (ranks / c.num_kv_heads);
      p.kv_heads = {kv, kv + 1};
    }
    p.intermediate = even(c.intermediate_size);
    p.vocab = even(c.vocab_size);
    return p;
  }

  /// The config of this shard's sub-model: its heads and MLP columns (the residual width, the
  /// head size and the vocabulary the caller sees stay those of the whole model).
  ModelConfig shard_config(const ModelConfig& c) const {
    ModelConfig s = c;
    s.num_heads = heads.size();
    s.num_kv_heads = kv_heads.size();
    s.intermediate_size = intermediate.size();
    return s;
  }
};

namespace detail {

/// Rows [r.begin, r.end) of `m`: a view of the same memory.
inline WeightMatrix shard_rows(const WeightMatrix& m, ShardRange r) {
  return WeightMatrix{m.type, r.size(), m.cols, m.empty() ? nullptr : m.row(r.begin)};
}

/// Columns [r.begin, r.end) of `m`, copied into a buffer `keep` holds: in the stored format when
/// the range falls on block boundaries, else dequantized to f32.
inline WeightMatrix shard_cols(const WeightMatrix& m, ShardRange r, std::vector<std::shared_ptr<const void>>& keep) {
  const int block = storage_info(m.type).block_elems;
  const bool aligned = r.begin % block == 0 && r.size() % block == 0;
  const StorageType type = aligned ? m.type : StorageType::F32;
  const size_t stride = row_bytes(type, r.size());
  auto buf = std::make_shared<std::vector<std::byte>>(stride * static_cast<size_t>(m.rows));
  std::vector<float> row(aligned ? 0 : static_cast<size_t>(m.cols));
  for (int64_t i = 0; i < m.rows; ++i) {
    std::byte* dst = buf->data() + static_cast<size_t>(i) * stride;
    if (aligned) {
      std::memcpy(dst, m.row(i) + row_bytes(m.type, r.begin), stride);
    } else {
      io::dequantize_row(m.type, m.row(i), row.data(), m.cols);
      std::memcpy(dst, row.data() + r.begin, stride);
    }
  }
  keep.push_back(buf);
  return WeightMatrix{type, m.rows, r.size(), buf->data()};
}

/// Elements [r.begin * width, r.end * width) of a bias vector (empty stays empty).
inline std::vector<float> shard_vector(const std::vector<float>& v, ShardRange r, int64_t width) {
  if (v.empty()) return {};
  return std::vector<float>(v.begin() + r.begin * width, v.begin() + r.end * width);
}

}  // namespace detail

/// The weights rank `plan.rank` holds: its rows of the column-parallel matrices and the
/// vocabulary, its columns of the row-parallel ones (copied), the norms. Row shards are views
/// into `w`'s memory, which the result keeps alive.
inline ModelWeights shard_weights(const ModelWeights& w, const ShardPlan& plan) {
  const ModelConfig& c = w.config;
  const int64_t hd = c.head_dim;
  ModelWeights s;
  s.config = plan.shard_config(c);
  s.keep_alive = w.keep_alive;
  s.embed = detail::shard_rows(w.embed, plan.vocab);
  s.lm_head = detail::shard_rows(w.lm_head, plan.vocab);
  s.final_norm = w.final_norm;
  const ShardRange q_rows{plan.heads.begin * hd, plan.heads.end * hd};
  const ShardRange kv_rows{plan.kv_heads.begin * hd, plan.kv_heads.end * hd};
  s.layers.reserve(w.layers.size());
  for (const LayerWeights& l : w.layers) {
    LayerWeights o;
    o.attn_norm = l.attn_norm;
    o.mlp_norm = l.mlp_norm;
    o.wq = detail::shard_rows(l.wq, q_rows);
    o.wk = detail::shard_rows(l.wk, kv_rows);
    o.wv = detail::shard_rows(l.wv, kv_rows);
    o.bq = detail::shard_vector(l.bq, plan.heads, hd);
    o.bk = detail::shard_vector(l.bk, plan.kv_heads, hd);
    o.bv = detail::shard_vector(l.bv, plan.kv_heads, hd);
    o.wo = detail::shard_cols(l.wo, q_rows, s.keep_alive);
    o.w_gate = detail::shard_rows(l.w_gate, plan.intermediate);
    o.w_up = detail::shard_rows(l.w_up, plan.intermediate);
    o.w_down = detail::shard_cols(l.w_down, plan.intermediate, s.keep_alive);
    s.layers.push_back(std::move(o));
  }
  return s;
}

}  // namespace turbine
