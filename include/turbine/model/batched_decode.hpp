#pragma once
// One decode step for several sequences at once: each has its own KV cache and one new token.
// The matrix products take every sequence's row together, so the weights stream from memory
// once per step instead of once per sequence; rotary embedding and attention run per sequence
// on its own cache. With at most kExactDecodeBatch rows, cpu::linear keeps its per-row fused
// path, so every sequence gets bit for bit the logits Transformer::forward gives it alone (the
// serving engine relies on that; tests/serve/scheduler.cpp checks it).
#include <algorithm>
#include <span>
#include <vector>

#include "transformer.hpp"

namespace turbine {

/// Rows up to which cpu::linear computes each row on its own (its kFusedMaxTokens).
inline constexpr int64_t kExactDecodeBatch = 4;

/// Scratch of decode_batch, reused across steps.
struct BatchedDecodeScratch {
  Activations act;  ///< [n, *] rows, as in Transformer
};

/// Appends tokens[i] to caches[i] for each i and writes logits [n, vocab]. For the standard
/// Llama decoder layer (Transformer's default); n must be at most kExactDecodeBatch.
template <class S>
void decode_batch(const Transformer<S, LlamaDecoderLayer>& model, std::span<HostKvCache* const> caches,
                  std::span<const int32_t> tokens, std::vector<float>& logits, BatchedDecodeScratch& scratch) {
  const ModelConfig& c = model.config();
  const ModelWeights& w = model.weights();
  const int64_t n = static_cast<int64_t>(tokens.size());
  check(n > 0 && n <= kExactDecodeBatch && caches.size() == tokens.size(), "decode_batch: 1 to ", kExactDecodeBatch,
        " sequences, one token each (got ", n, " tokens for ", caches.size(), " caches)");
  for (HostKvCache* cache : caches) cache->reserve_more(1);
  Activations& a = scratch.act;
  a.resize(c, n);
  logits.resize(static_cast<size_t>(n * c.vocab_size));
  std::vector<std::vector<float>> inv_freq;  // per sequence: only dynamic NTK scaling depends on the length
  for (HostKvCache* cache : caches) inv_freq.push_back(rope_inv_freq(c, cache->length() + 1));
  cpu::embedding(w.embed, tokens.data(), n, a.x.data());
  const cpu::AttentionShape shape{c.num_heads, c.num_kv_heads, c.head_dim, c.sliding_window};
  const int64_t q_size = c.q_size(), kv = c.kv_size(), hidden = c.hidden_size;
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const LayerWeights& lw = w.layers[l];
    // x += attention(norm(x)), as SelfAttention does for one sequence.
    RmsNorm<S>::forward(c, lw.attn_norm, a.x.data(), a.h.data(), n);
    cpu::linear(lw.wq, a.h.data(), n, a.q.data(), lw.bq.empty() ? nullptr : lw.bq.data());
    cpu::linear(lw.wk, a.h.data(), n, a.k.data(), lw.bk.empty() ? nullptr : lw.bk.data());
    cpu::linear(lw.wv, a.h.data(), n, a.v.data(), lw.bv.empty() ? nullptr : lw.bv.data());
    for (int64_t i = 0; i < n; ++i) {
      HostKvCache& cache = *caches[i];
      const int64_t pos = cache.length();
      float* q = a.q.data() + i * q_size;
      float* k = a.k.data() + i * kv;
      cpu::apply_rope(q, 1, c.num_heads, c.head_dim, pos, inv_freq[i]);
      cpu::apply_rope(k, 1, c.num_kv_heads, c.head_dim, pos, inv_freq[i]);
      float* v = a.v.data() + i * kv;
      quant::kv_round_trip<typename S::kv_scheme>(k, 1, c.num_kv_heads, c.head_dim);
      quant::kv_round_trip<typename S::kv_scheme>(v, 1, c.num_kv_heads, c.head_dim);
      cache.write(l, pos, k, v, 1);
      cpu::attention(q, cache.view(l), 1, pos, shape, a.attn.data() + i * q_size);
    }
    // The attention rows are packed [n, q_size], as the single-sequence path leaves them.
    cpu::linear(lw.wo, a.attn.data(), n, a.h.data());
    cpu::add_inplace(a.x.data(), a.h.data(), n * hidden);
    // x += mlp(norm(x)).
    RmsNorm<S>::forward(c, lw.mlp_norm, a.x.data(), a.h.data(), n);
    GatedMlp<S>::forward(c, lw, a, n, a.h.data());
    cpu::add_inplace(a.x.data(), a.h.data(), n * hidden);
  }
  for (HostKvCache* cache : caches) cache->advance(1);
  RmsNorm<S>::forward(c, w.final_norm, a.x.data(), a.x.data(), n);
  cpu::linear(w.lm_head, a.x.data(), n, logits.data());
}

}  // namespace turbine
