#pragma once
// The decoder's layers as class templates over a Spec. Each has a plain Weights view and a
// forward() on the Spec's backend; a user can swap any of them (see Transformer's parameters).
#include <cstdint>
#include <span>
#include <vector>

#include "../backend/cpu/cpu.hpp"
#include "../quant/kv_quant.hpp"
#include "../model/config.hpp"
#include "../model/kv_cache.hpp"
#include "../model/weights.hpp"
#include "rotary.hpp"

namespace turbine {

/// Scratch activations of one forward call of `tokens` tokens, shared by the layers of a
/// Transformer. Every buffer holds `tokens` rows.
struct Activations {
  std::vector<float> x;     ///< [tokens, hidden] the residual stream
  std::vector<float> h;     ///< [tokens, hidden] normed input of a sublayer, then its output
  std::vector<float> q;     ///< [tokens, heads * head_dim] queries
  std::vector<float> k;     ///< [tokens, kv_heads * head_dim] keys of this call
  std::vector<float> v;     ///< [tokens, kv_heads * head_dim] values of this call
  std::vector<float> attn;  ///< [tokens, max(heads * head_dim, hidden)] attention output
  std::vector<float> gate;  ///< [tokens, intermediate] MLP gate projection (and its activation)
  std::vector<float> up;    ///< [tokens, intermediate] MLP up projection
  /// Sizes every buffer for `tokens` rows of model `c`.
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

/// A norm part of DecoderLayer: `forward(c, gamma, x, y, tokens)` writes the normalized rows of
/// `x` ([tokens, hidden]) scaled by `gamma` ([hidden]) to `y`; `x` and `y` may be the same buffer.
template <class L>
concept NormLayer = requires(const ModelConfig& c, const std::vector<float>& gamma, const float* x, float* y, int64_t t) {
  L::forward(c, gamma, x, y, t);
};

/// An attention part of DecoderLayer: reads the normed input `a.h`, appends this call's keys and
/// values to `cache`, and writes the attention block's output ([tokens, hidden]) to `out`.
template <class L>
concept AttentionLayer = requires(const ModelConfig& c, const LayerWeights& w, int64_t layer, HostKvCache& cache,
                                  const std::vector<float>& inv_freq, Activations& a, int64_t t, float* out) {
  L::forward(c, w, layer, cache, inv_freq, a, t, out);
};

/// An MLP part of DecoderLayer: reads the normed input `a.h` and writes [tokens, hidden] to `out`.
template <class L>
concept MlpLayer = requires(const ModelConfig& c, const LayerWeights& w, Activations& a, int64_t t, float* out) {
  L::forward(c, w, a, t, out);
};

/// A whole decoder layer, as Transformer calls it: updates the residual stream `a.x` in place.
template <class L>
concept DecoderLayerType = requires(const ModelConfig& c, const LayerWeights& w, int64_t layer, HostKvCache& cache,
                                    const std::vector<float>& inv_freq, Activations& a, int64_t t) {
  L::forward(c, w, layer, cache, inv_freq, a, t);
};

/// RMSNorm: y = x / sqrt(mean(x^2) + eps) * gamma (Llama, Mistral, Qwen2, InternLM2).
template <class Spec>
struct RmsNorm {
  /// See NormLayer.
  static void forward(const ModelConfig& c, const std::vector<float>& gamma, const float* x, float* y, int64_t tokens) {
    cpu::rms_norm(x, gamma.data(), tokens, c.hidden_size, c.rms_norm_eps, y);
  }
};

/// Grouped-query self-attention with rotary embedding (and the sliding window, q/k/v biases of
/// the config); appends this call's keys and values to the cache and leaves the attention
/// output projection (wo * heads) in `out`.
template <class Spec>
struct SelfAttention {
  /// See AttentionLayer.
  static void forward(const ModelConfig& c, const LayerWeights& w, int64_t layer, HostKvCache& cache,
                      const std::vector<float>& inv_freq, Activations& a, int64_t tokens, float* out) {
    const int64_t pos0 = cache.length();
    const float* h = a.h.data();
    cpu::linear(w.wq, h, tokens, a.q.data(), w.bq.empty() ? nullptr : w.bq.data());
    cpu::linear(w.wk, h, tokens, a.k.data(), w.bk.empty() ? nullptr : w.bk.data());
    cpu::linear(w.wv, h, tokens, a.v.data(), w.bv.empty() ? nullptr : w.bv.data());
    cpu::apply_rope(a.q.data(), tokens, c.num_heads, c.head_dim, pos0, inv_freq);
    cpu::apply_rope(a.k.data(), tokens, c.num_kv_heads, c.head_dim, pos0, inv_freq);
    // A quantized KV scheme: the new rows become what an int8/int4 cache returns (quant/kv_quant.hpp).
    quant::kv_round_trip<typename Spec::kv_scheme>(a.k.data(), tokens, c.num_kv_heads, c.head_dim);
    quant::kv_round_trip<typename Spec::kv_scheme>(a.v.data(), tokens, c.num_kv_heads, c.head_dim);
    cache.write(layer, pos0, a.k.data(), a.v.data(), tokens);
    cpu::AttentionShape shape{c.num_heads, c.num_kv_heads, c.head_dim, c.sliding_window};
    cpu::attention(a.q.data(), cache.view(layer), tokens, pos0, shape, a.attn.data());
    cpu::linear(w.wo, a.attn.data(), tokens, out);
  }
};

/// SwiGLU feed-forward: down(silu(gate(h)) * up(h)).
template <class Spec>
struct GatedMlp {
  /// See MlpLayer.
  static void forward(const ModelConfig& c, const LayerWeights& w, Activations& a, int64_t tokens, float* out) {
    cpu::linear(w.w_gate, a.h.data(), tokens, a.gate.data());
    cpu::linear(w.w_up, a.h.data(), tokens, a.up.data());
    cpu::silu_mul(a.gate.data(), a.up.data(), tokens * c.intermediate_size, a.gate.data());
    cpu::linear(w.w_down, a.gate.data(), tokens, out);
  }
};

/// Pre-norm decoder layer: x += attn(norm(x)); x += mlp(norm(x)). Each part is a template over
/// the Spec, so a model swaps one (a user's norm, a GELU MLP) without touching the others; the
/// model's final norm is `Norm` as well.
template <class Spec, template <class> class Norm = RmsNorm, template <class> class Attention = SelfAttention,
          template <class> class Mlp = GatedMlp>
struct DecoderLayer {
  static_assert(NormLayer<Norm<Spec>>,
                "the Norm part of turbine::DecoderLayer needs static void forward(const ModelConfig&, "
                "const std::vector<float>& gamma, const float* x, float* y, int64_t tokens) (see turbine::RmsNorm)");
  static_assert(AttentionLayer<Attention<Spec>>,
                "the Attention part of turbine::DecoderLayer needs static void forward(const ModelConfig&, "
                "const LayerWeights&, int64_t layer, HostKvCache&, const std::vector<float>& inv_freq, "
                "Activations&, int64_t tokens, float* out) (see turbine::SelfAttention)");
  static_assert(MlpLayer<Mlp<Spec>>,
                "the Mlp part of turbine::DecoderLayer needs static void forward(const ModelConfig&, "
                "const LayerWeights&, Activations&, int64_t tokens, float* out) (see turbine::GatedMlp)");
  using final_norm = Norm<Spec>;  ///< the norm Transformer applies before the LM head

  /// Runs the layer on the residual stream `a.x` ([tokens, hidden]), in place.
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

/// DecoderLayer with any parts, as the one-parameter layer template Transformer takes:
/// `DecoderParts<MyNorm, SelfAttention, GeluMlp>::Layer`.
template <template <class> class Norm = RmsNorm, template <class> class Attention = SelfAttention,
          template <class> class Mlp = GatedMlp>
struct DecoderParts {
  /// The decoder layer of these parts for a Spec.
  template <class Spec>
  using Layer = DecoderLayer<Spec, Norm, Attention, Mlp>;
};

/// DecoderLayer with the standard parts, as a one-parameter template for Transformer's default.
template <class Spec>
using LlamaDecoderLayer = DecoderLayer<Spec, RmsNorm, SelfAttention, GatedMlp>;

}  // namespace turbine
