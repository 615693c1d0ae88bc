#pragma once
// TensorParallel<Spec>: a model split into N shards by attention heads, MLP columns and vocabulary
// (shard_weights.hpp), each with its own slice of the KV cache, run with the collectives of
// Megatron/LMDeploy tensor parallelism: an all-reduce after the attention output projection and
// after the MLP down projection, an all-reduce of the vocab-parallel embedding, an all-gather of
// the vocab-parallel LM head.
//
// On the CPU the N ranks are simulated: their shards are computed in turn, and the collectives
// sum (or concatenate) the ranks' buffers in rank order. It computes what N devices would, so it
// checks the sharding and the collective logic against the unsharded model on any machine
// (tests/model/tensor_parallel.cpp); it does not run faster than one shard-less model.
#include <algorithm>
#include <memory>
#include <span>
#include <type_traits>
#include <vector>

#include "../layers/layers.hpp"
#include "shard_weights.hpp"
#include "spec.hpp"
#include "transformer.hpp"
#include "weight_scheme.hpp"

namespace turbine {

/// The collectives of simulated ranks: each operates on every rank's buffer at once.
struct SimulatedCollectives {
  /// parts[r] += ... : every rank's buffer of `n` floats becomes the sum over ranks (in rank order).
  static void all_reduce_sum(std::span<float* const> parts, int64_t n) {
    float* sum = parts[0];
    for (size_t r = 1; r < parts.size(); ++r)
      for (int64_t i = 0; i < n; ++i) sum[i] += parts[r][i];
    for (size_t r = 1; r < parts.size(); ++r) std::copy(sum, sum + n, parts[r]);
  }
};

/// The KV cache of one sequence under tensor parallelism: one cache of its KV heads per rank.
class TensorParallelCache {
 public:
  TensorParallelCache() = default;
  /// One cache per shard config, of `capacity` positions each.
  TensorParallelCache(const std::vector<ModelConfig>& shards, int64_t capacity) {
    ranks_.reserve(shards.size());
    for (const ModelConfig& c : shards) ranks_.emplace_back(c, capacity);
  }
  int64_t length() const { return ranks_.front().length(); }      ///< positions held
  int64_t capacity() const { return ranks_.front().capacity(); }  ///< the most positions it can hold
  /// Forgets positions from `n` on, on every rank.
  void truncate(int64_t n) {
    for (HostKvCache& c : ranks_) c.truncate(n);
  }
  void clear() { truncate(0); }                     ///< forgets every position
  HostKvCache& rank(size_t r) { return ranks_[r]; }  ///< rank `r`'s slice
  size_t ranks() const { return ranks_.size(); }     ///< how many ranks

 private:
  std::vector<HostKvCache> ranks_;
};

/// A Llama-family model on the CPU split `tp` ways (simulated ranks): the same interface as
/// `Transformer<S>` (config, new_cache, forward), and the same logits up to float summation order.
template <class S>
class TensorParallel {
 public:
  using spec = S;                     ///< the Spec this model was built from
  using Cache = TensorParallelCache;  ///< the KV cache type of one sequence
  /// Prompt tokens per forward step, as Transformer's.
  static constexpr int64_t kPrefillChunk = Transformer<S>::kPrefillChunk;
  /// Chunks start at multiples of this, as in Transformer, so chunking never changes a position's bits.
  static constexpr int64_t kPrefillAlign = Transformer<S>::kPrefillAlign;
  static_assert(!S::backend::is_gpu,
                "turbine::TensorParallel runs simulated ranks on turbine::Cpu; use turbine::Spec<turbine::f32>");

  /// Splits `weights` (after the Spec's weight scheme, so a 4-bit model is sharded in its 4-bit
  /// format) `tp` ways; fails naming --tp when the model's heads do not split that way.
  TensorParallel(ModelWeights weights, int tp) : full_(apply_weight_scheme<typename S::weight_scheme>(std::move(weights))) {
    for (int r = 0; r < tp; ++r) {
      plans_.push_back(ShardPlan::make(full_.config, r, tp));
      shards_.push_back(shard_weights(full_, plans_.back()));
      configs_.push_back(shards_.back().config);
    }
    act_.resize(static_cast<size_t>(tp));
    parts_.resize(static_cast<size_t>(tp));
  }

  const ModelConfig& config() const { return full_.config; }     ///< the whole model's sizes and options
  /// The unsharded weights the shards were cut from (their row shards are views into them).
  const ModelWeights& weights() const { return full_; }
  int ranks() const { return static_cast<int>(shards_.size()); }  ///< the tensor-parallel degree
  const ShardPlan& plan(int r) const { return plans_[static_cast<size_t>(r)]; }       ///< what rank r holds
  const ModelWeights& shard(int r) const { return shards_[static_cast<size_t>(r)]; }  ///< rank r's weights
  /// KV bytes one position takes over all ranks (replicated KV heads count once per rank).
  size_t kv_bytes_per_position() const {
    size_t n = 0;
    for (const ModelConfig& c : configs_) n += static_cast<size_t>(2 * c.num_layers * c.kv_size()) * sizeof(float);
    return n;
  }

  /// A cache for one sequence of at most `capacity` tokens (the model's context by default).
  Cache new_cache(int64_t capacity = 0) const {
    const int64_t max = full_.config.max_position_embeddings;
    return Cache(configs_, capacity > 0 ? std::min(capacity, max) : max);
  }

  /// Appends `tokens` to the sequence in `cache`; logits as Transformer::forward writes them.
  void forward(Cache& cache, std::span<const int32_t> tokens, std::vector<float>& logits, bool all_logits = false) {
    const ModelConfig& c = full_.config;
    const int64_t n = static_cast<int64_t>(tokens.size());
    const size_t tp = shards_.size();
    check(n > 0, "forward() needs at least one token");
    check(cache.ranks() == tp, "a cache of ", cache.ranks(), " ranks given to a model split ", tp, " ways");
    for (size_t r = 0; r < tp; ++r) cache.rank(r).reserve_more(n);
    logits.resize(static_cast<size_t>((all_logits ? n : 1) * c.vocab_size));
    for (int64_t start = 0, t = 0; start < n; start += t) {
      const int64_t pos0 = cache.length();
      const int64_t off = pos0 % kPrefillAlign;
      t = std::min(off != 0 ? kPrefillAlign - off : kPrefillChunk, n - start);
      const int64_t width = t * c.hidden_size;
      for (size_t r = 0; r < tp; ++r) {
        act_[r].resize(configs_[r], t);
        parts_[r].resize(static_cast<size_t>(width));
      }
      embed(tokens.subspan(static_cast<size_t>(start), static_cast<size_t>(t)));
      std::vector<float>& x = act_[0].x;  // the residual stream, replicated: rank 0's copy is used
      const auto inv_freq = rope_inv_freq(c, pos0 + t);
      for (int64_t l = 0; l < c.num_layers; ++l) {
        // x += all_reduce(attention_r(norm(x))) ; x += all_reduce(mlp_r(norm(x)))
        for (int sub = 0; sub < 2; ++sub) {
          for (size_t r = 0; r < tp; ++r) {
            const LayerWeights& w = shards_[r].layers[static_cast<size_t>(l)];
            RmsNorm<S>::forward(c, sub == 0 ? w.attn_norm : w.mlp_norm, x.data(), act_[r].h.data(), t);
            if (sub == 0)
              SelfAttention<S>::forward(configs_[r], w, l, cache.rank(r), inv_freq, act_[r], t, parts_[r].data());
            else
              GatedMlp<S>::forward(configs_[r], w, act_[r], t, parts_[r].data());
          }
          all_reduce_parts(width);
          cpu::add_inplace(x.data(), parts_[0].data(), width);
        }
      }
      for (size_t r = 0; r < tp; ++r) cache.rank(r).advance(t);
      const int64_t first = all_logits ? 0 : t - 1;
      if (!all_logits && start + t < n) continue;
      const int64_t rows = t - first;
      float* hx = x.data() + first * c.hidden_size;
      RmsNorm<S>::forward(c, full_.final_norm, hx, hx, rows);
      float* dst = logits.data() + (all_logits ? start * c.vocab_size : 0);
      lm_head_all_gather(hx, rows, dst);
    }
  }

 private:
  // Vocab-parallel embedding: each rank looks up the tokens of its vocabulary rows (zeros for the
  // others), and an all-reduce sums the ranks' rows into act_[0].x.
  void embed(std::span<const int32_t> ids) {
    const ModelConfig& c = full_.config;
    const int64_t t = static_cast<int64_t>(ids.size());
    for (int32_t id : ids) check(id >= 0 && id < c.vocab_size, "token id ", id, " is outside the vocabulary of ", c.vocab_size);
    for (size_t r = 0; r < shards_.size(); ++r) {
      const ShardRange v = plans_[r].vocab;
      float* out = parts_[r].data();
      for (int64_t i = 0; i < t; ++i) {
        float* row = out + i * c.hidden_size;
        if (ids[static_cast<size_t>(i)] >= v.begin && ids[static_cast<size_t>(i)] < v.end) {
          const int32_t local = static_cast<int32_t>(ids[static_cast<size_t>(i)] - v.begin);
          cpu::embedding(shards_[r].embed, &local, 1, row);
        } else {
          std::fill(row, row + c.hidden_size, 0.0f);
        }
      }
    }
    all_reduce_parts(t * c.hidden_size);
    std::copy(parts_[0].begin(), parts_[0].begin() + t * c.hidden_size, act_[0].x.begin());
  }

  void all_reduce_parts(int64_t n) {
    std::vector<float*> p;
    for (auto& v : parts_) p.push_back(v.data());
    SimulatedCollectives::all_reduce_sum(p, n);
  }

  // Vocab-parallel LM head: each rank computes the logits of its vocabulary rows; the all-gather
  // places them side by side in each row of `dst` ([rows, vocab]).
  void lm_head_all_gather(const float* hx, int64_t rows, float* dst) {
    const int64_t vocab = full_.config.vocab_size;
    for (size_t r = 0; r < shards_.size(); ++r) {
      const ShardRange v = plans_[r].vocab;
      gather_.resize(static_cast<size_t>(rows * v.size()));
      cpu::linear(shards_[r].lm_head, hx, rows, gather_.data());
      for (int64_t i = 0; i < rows; ++i)
        std::copy(gather_.begin() + i * v.size(), gather_.begin() + (i + 1) * v.size(), dst + i * vocab + v.begin);
    }
  }

  ModelWeights full_;  // the unsharded weights (the shards' row slices point into them)
  std::vector<ShardPlan> plans_;
  std::vector<ModelWeights> shards_;
  std::vector<ModelConfig> configs_;
  std::vector<Activations> act_;          // per rank
  std::vector<std::vector<float>> parts_;  // per rank: its partial sums of a sublayer's output
  std::vector<float> gather_;
};

}  // namespace turbine

namespace turbine {

/// Builds a `Model` from `weights` split `tp` ways: TensorParallel takes the degree; a model type
/// that runs on one device accepts only tp 1 and says which type to use otherwise.
template <class Model>
std::unique_ptr<Model> make_model(ModelWeights weights, int tp = 1) {
  if constexpr (std::is_constructible_v<Model, ModelWeights, int>) {
    return std::make_unique<Model>(std::move(weights), tp);
  } else {
    check(tp == 1, "tp = ", tp, ": this model type runs unsplit; tensor parallelism needs turbine::TensorParallel<Spec> ",
          "(the ranks simulated on the CPU; --tp on the CLI)");
    return std::make_unique<Model>(std::move(weights));
  }
}

}  // namespace turbine
