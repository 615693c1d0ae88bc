#pragma once
// Transformer<Spec>: embedding, a stack of decoder layers and the LM head, run over one sequence's
// KV cache. Prompts are processed in chunks so scratch memory stays bounded.
#include <algorithm>
#include <span>
#include <vector>

#include "../layers/layers.hpp"
#include "spec.hpp"
#include "weights.hpp"

namespace turbine {

template <class S, template <class> class Layer = LlamaDecoderLayer>
class Transformer {
 public:
  using spec = S;
  using Cache = HostKvCache;
  static constexpr int64_t kPrefillChunk = 256;
  static_assert(!S::backend::is_gpu,
                "a turbine::Cuda model needs the CUDA backend: include <turbine/turbine.cuh> and compile with nvcc");

  explicit Transformer(ModelWeights weights) : w_(std::move(weights)) {}

  const ModelConfig& config() const { return w_.config; }
  const ModelWeights& weights() const { return w_; }

  /// A cache for one sequence of at most `capacity` tokens (the model's context by default).
  HostKvCache new_cache(int64_t capacity = 0) const {
    const int64_t max = w_.config.max_position_embeddings;
    return HostKvCache(w_.config, capacity > 0 ? std::min(capacity, max) : max);
  }

  /// Appends `tokens` to the sequence in `cache`. Writes logits [vocab] of the last token, or
  /// [tokens, vocab] for every token when `all_logits` is set.
  void forward(HostKvCache& cache, std::span<const int32_t> tokens, std::vector<float>& logits, bool all_logits = false) {
    const ModelConfig& c = w_.config;
    const int64_t n = static_cast<int64_t>(tokens.size());
    check(n > 0, "forward() needs at least one token");
    cache.reserve_more(n);
    logits.resize(static_cast<size_t>((all_logits ? n : 1) * c.vocab_size));
    for (int64_t start = 0; start < n; start += kPrefillChunk) {
      const int64_t t = std::min(kPrefillChunk, n - start);
      act_.resize(c, t);
      cpu::embedding(w_.embed, tokens.data() + start, t, act_.x.data());
      const auto inv_freq = rope_inv_freq(c, cache.length() + t);
      for (int64_t l = 0; l < c.num_layers; ++l)
        Layer<S>::forward(c, w_.layers[l], l, cache, inv_freq, act_, t);
      cache.advance(t);
      // Only the rows whose logits are wanted go through the final norm and LM head.
      const int64_t first = all_logits ? 0 : t - 1;
      if (!all_logits && start + t < n) continue;
      const int64_t rows = t - first;
      float* hx = act_.x.data() + first * c.hidden_size;
      cpu::rms_norm(hx, w_.final_norm.data(), rows, c.hidden_size, c.rms_norm_eps, hx);
      float* dst = logits.data() + (all_logits ? start * c.vocab_size : 0);
      cpu::linear(w_.lm_head, hx, rows, dst);
    }
  }

 private:
  ModelWeights w_;
  Activations act_;
};

/// The model class that runs a Spec: Transformer on the CPU; backend/cuda specializes it for Cuda.
template <class S, class = void>
struct ModelTypeOf {
  using type = Transformer<S>;
};

/// The Llama family (Llama 2/3, Mistral, SmolLM, Qwen2 with bias, InternLM2 with split wqkv):
/// one type, with the differences read from the model's config at load time.
template <Precision P = f32, WeightScheme W = quant::None, KvScheme K = kv::Same, Backend B = Cpu>
using Llama = typename ModelTypeOf<Spec<P, W, K, B>>::type;

}  // namespace turbine
