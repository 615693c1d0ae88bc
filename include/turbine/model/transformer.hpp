#pragma once
// Transformer<Spec>: embedding, a stack of decoder layers and the LM head, run over one sequence's
// KV cache. Prompts are processed in chunks so scratch memory stays bounded.
#include <algorithm>
#include <span>
#include <type_traits>
#include <vector>

#include "../layers/layers.hpp"
#include "spec.hpp"
#include "weight_scheme.hpp"
#include "weights.hpp"

namespace turbine {

namespace detail {
template <class L, class S>
struct FinalNormOf {
  using type = RmsNorm<S>;
};
template <class L, class S>
  requires requires { typename L::final_norm; }
struct FinalNormOf<L, S> {
  using type = typename L::final_norm;
};
}  // namespace detail

/// The decoder on the CPU, composed from a layer template (see DecoderLayer and DecoderParts):
/// embedding, `num_layers` layers, the final norm (the layer's `final_norm`, RmsNorm by default)
/// and the LM head. Sizes come from the ModelConfig in the weights at run time.
template <class S, template <class> class Layer = LlamaDecoderLayer>
class Transformer {
 public:
  using spec = S;            ///< the Spec this model was built from
  using Cache = HostKvCache; ///< the KV cache type of one sequence
  /// Prompt tokens per forward step: bounds the scratch memory of long prompts.
  static constexpr int64_t kPrefillChunk = 256;
  /// Chunks start at multiples of this (absolute positions), and cpu::linear computes each block
  /// of it on its own, so a position gets the same bits however the prompt was split into calls
  /// (at multiples of it): the engine's prompt chunks and the prefix cache's blocks
  /// (engine/paged_cache_pool.hpp) rely on that.
  static constexpr int64_t kPrefillAlign = cpu::kLinearTokenBlock;
  static_assert(!S::backend::is_gpu,
                "turbine::Transformer and turbine::Decoder (models with your own layer templates) run on "
                "turbine::Cpu: use turbine::Spec<turbine::f32> for them; on the GPU use "
                "turbine::Llama<P, W, K, turbine::Cuda> from <turbine/turbine.cuh>");
  static_assert(DecoderLayerType<Layer<S>>,
                "the Layer template of turbine::Transformer needs static void forward(const ModelConfig&, "
                "const LayerWeights&, int64_t layer, HostKvCache&, const std::vector<float>& inv_freq, "
                "Activations&, int64_t tokens) (see turbine::DecoderLayer)");
  using FinalNorm = typename detail::FinalNormOf<Layer<S>, S>::type;  ///< applied before the LM head

  /// Takes the weights (views into mapped files; nothing is copied unless the Spec's weight scheme
  /// rounds them to 4 bits, see apply_weight_scheme).
  explicit Transformer(ModelWeights weights) : w_(apply_weight_scheme<typename S::weight_scheme>(std::move(weights))) {}

  /// The model's sizes and options.
  const ModelConfig& config() const { return w_.config; }
  /// The weights this model runs.
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
    for (int64_t start = 0, t = 0; start < n; start += t) {
      const int64_t off = cache.length() % kPrefillAlign;
      t = std::min(off != 0 ? kPrefillAlign - off : kPrefillChunk, n - start);
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
      FinalNorm::forward(c, w_.final_norm, hx, hx, rows);
      float* dst = logits.data() + (all_logits ? start * c.vocab_size : 0);
      cpu::linear(w_.lm_head, hx, rows, dst);
    }
  }

 private:
  ModelWeights w_;
  Activations act_;
};

/// A CPU model composed from parts: the Spec's tags and the norm, attention and MLP templates.
/// `Decoder<Spec<f32>, MyNorm, SelfAttention, GeluMlp>` is a Llama whose norm and MLP are yours.
template <class S, template <class> class Norm = RmsNorm, template <class> class Attention = SelfAttention,
          template <class> class Mlp = GatedMlp>
using Decoder = Transformer<S, DecoderParts<Norm, Attention, Mlp>::template Layer>;

/// What `Llama<P, W, K, Cuda>` names when <turbine/turbine.cuh> was not included: using it stops
/// the build with a static_assert that says so.
template <class S>
struct MissingCudaBackend {
  static_assert(!sizeof(S*),
                "a turbine::Cuda model needs the CUDA backend: include <turbine/turbine.cuh> (before using the "
                "model type) and compile with nvcc, or use turbine::ExternModel<Spec> from a .cpp file "
                "(see <turbine/instantiate.hpp>)");
  using Cache = HostKvCache;  ///< never used (keeps the first error the static_assert)
};

/// The model class that runs a Spec: Transformer on the CPU; backend/cuda specializes it for Cuda.
template <class S, class = void>
struct ModelTypeOf {
  /// The model class.
  using type = std::conditional_t<S::backend::is_gpu, MissingCudaBackend<S>, Transformer<S>>;
};

/// The Llama family (Llama 2/3, Mistral, SmolLM, Qwen2 with bias, InternLM2 with split wqkv):
/// one type, with the differences read from the model's config at load time.
template <Precision P = f32, WeightScheme W = quant::None, KvScheme K = kv::Same, Backend B = Cpu>
using Llama = typename ModelTypeOf<Spec<P, W, K, B>>::type;

}  // namespace turbine
