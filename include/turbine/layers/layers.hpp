#pragma once
// The decoder's layers as class templates over a Spec. Each has a plain Weights view and a
// forward() on the Spec's backend; a user can swap any of them (see Transformer's parameters).
#include <cstdint>
#include <span>
#include <vector>

#include "../backend/cpu/cpu.hpp"
#include "../model/config.hpp"
#include "../model/kv_cache.hpp"
#include "../model/weights.hpp"
#include "rotary.hpp"

namespace turbine {

/// Scratch activations of one forward call of `tokens` tokens.
struct Activations {
  std::vector<float> x, h, q, k, v, attn, gate, up;  // [tokens, *] rows
  void resize(const ModelConfig& c, int64_t tokens) {
    auto sz = [&](int64_t n) { return static_cast<size_t>(n * tokens); };
    x.resize(sz(c.hidden_size));
    h.resize(sz(c.hidden_size));
    q.resize(sz(c.q_size()));
    k.resize(sz(c.kv_size()));
    v.resize(sz(c.kv_size()));
    attn.resize(sz(std::max(c.q_size(), c.hidden_size)));
    gate.resize(sz(c.intermediate_size));
    up.resize(sz(c.intermediate_size));
  }
};

template <class Spec>
struct RmsNorm {
  static void forward(const ModelConfig& c, const std::vector<float>& gamma, const float* x, float* y, int64_t tokens) {
    cpu::rms_norm(x, gamma.data(), tokens, c.hidden_size, c.rms_norm_eps, y);
  }
};

/// Grouped-query self-attention with rotary embedding; appends this call's keys and values to
/// the cache and leaves the attention output projection (wo * heads) in `out`.
template <class Spec>
struct SelfAttention {
  static void forward(const ModelConfig& c, const LayerWeights& w, int64_t layer, HostKvCache& cache,
                      const std::vector<float>& inv_freq, Activations& a, int64_t tokens, float* out) {
    const int64_t pos0 = cache.length();
    const float* h = a.h.data();
    cpu::linear(w.wq, h, tokens, a.q.data(), w.bq.empty() ? nullptr : w.bq.data());
    cpu::linear(w.wk, h, tokens, a.k.data(), w.bk.empty() ? nullptr : w.bk.data());
    // Values go straight into the cache: [positions, kv_heads, head_dim] is the same row layout.
    float* k_cache = cache.keys(layer);
    float* v_cache = cache.values(layer);
    cpu::linear(w.wv, h, tokens, v_cache + pos0 * c.kv_size(), w.bv.empty() ? nullptr : w.bv.data());
    cpu::apply_rope(a.q.data(), tokens, c.num_heads, c.head_dim, pos0, inv_freq);
    cpu::apply_rope(a.k.data(), tokens, c.num_kv_heads, c.head_dim, pos0, inv_freq);
    std::copy(a.k.begin(), a.k.begin() + tokens * c.kv_size(), k_cache + pos0 * c.kv_size());
    cpu::AttentionShape shape{c.num_heads, c.num_kv_heads, c.head_dim, c.sliding_window};
    cpu::attention(a.q.data(), k_cache, v_cache, tokens, pos0, shape, a.attn.data());
    cpu::linear(w.wo, a.attn.data(), tokens, out);
  }
};

/// SwiGLU feed-forward: down(silu(gate(h)) * up(h)).
template <class Spec>
struct GatedMlp {
  static void forward(const ModelConfig& c, const LayerWeights& w, Activations& a, int64_t tokens, float* out) {
    cpu::linear(w.w_gate, a.h.data(), tokens, a.gate.data());
    cpu::linear(w.w_up, a.h.data(), tokens, a.up.data());
    cpu::silu_mul(a.gate.data(), a.up.data(), tokens * c.intermediate_size, a.gate.data());
    cpu::linear(w.w_down, a.gate.data(), tokens, out);
  }
};

/// Pre-norm decoder layer: x += attn(norm(x)); x += mlp(norm(x)).
template <class Spec, template <class> class Norm = RmsNorm, template <class> class Attention = SelfAttention,
          template <class> class Mlp = GatedMlp>
struct DecoderLayer {
  static void forward(const ModelConfig& c, const LayerWeights& w, int64_t layer, HostKvCache& cache,
                      const std::vector<float>& inv_freq, Activations& a, int64_t tokens) {
    const int64_t n = tokens * c.hidden_size;
    Norm<Spec>::forward(c, w.attn_norm, a.x.data(), a.h.data(), tokens);
    // The projections read h before the output projection overwrites it, so h doubles as out.
    Attention<Spec>::forward(c, w, layer, cache, inv_freq, a, tokens, a.h.data());
    cpu::add_inplace(a.x.data(), a.h.data(), n);
    Norm<Spec>::forward(c, w.mlp_norm, a.x.data(), a.h.data(), tokens);
    Mlp<Spec>::forward(c, w, a, tokens, a.h.data());
    cpu::add_inplace(a.x.data(), a.h.data(), n);
  }
};

/// DecoderLayer with the standard parts, as a one-parameter template for Transformer's default.
template <class Spec>
using LlamaDecoderLayer = DecoderLayer<Spec, RmsNorm, SelfAttention, GatedMlp>;

}  // namespace turbine
