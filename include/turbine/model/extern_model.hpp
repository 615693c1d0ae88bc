#pragma once
// ExternModel<Spec>: a model type whose code is compiled in one translation unit of the user's
// (a .cu for Cuda, a .cpp for Cpu) and used from any other, including plain .cpp files built by
// g++ without the CUDA toolkit. This header declares it; <turbine/instantiate.hpp> defines it.
//
//   // model.hpp, included everywhere
//   using Model = turbine::ExternModel<turbine::Spec<turbine::f16, turbine::quant::None,
//                                                    turbine::kv::Same, turbine::Cuda>>;
//   // model.cu, compiled once by nvcc
//   #include <turbine/turbine.cuh>
//   #include <turbine/instantiate.hpp>
//   TURBINE_INSTANTIATE_MODEL(turbine::Spec<turbine::f16, turbine::quant::None, turbine::kv::Same, turbine::Cuda>)
//   // app.cpp, compiled by g++
//   turbine::Pipeline<Model> pipe(path);
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "config.hpp"
#include "spec.hpp"
#include "weights.hpp"

namespace turbine {

template <class S>
class ExternModel;

/// The KV cache of one sequence of an ExternModel; the backend's own cache behind a pointer.
template <class S>
class ExternCache {
 public:
  ExternCache(ExternCache&&) noexcept;             ///< moves the cache
  ExternCache& operator=(ExternCache&&) noexcept;  ///< moves the cache
  ~ExternCache();                                  ///< frees the cache's memory
  int64_t length() const;                          ///< tokens in the cache
  int64_t capacity() const;                        ///< the most tokens it can hold
  void truncate(int64_t n);                        ///< forgets positions from `n` on
  void clear();                                    ///< forgets every position

 private:
  friend class ExternModel<S>;
  struct Impl;
  explicit ExternCache(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// `ModelTypeOf<S>::type` (what `Llama<...>` names) behind a compile firewall: the same
/// interface (usable by Pipeline, ChatSession and generate_sequence), with its member functions
/// compiled only where TURBINE_INSTANTIATE_MODEL(S) appears.
template <class S>
class ExternModel {
 public:
  using spec = S;                ///< the Spec this model was built from
  using Cache = ExternCache<S>;  ///< the KV cache type of one sequence

  explicit ExternModel(ModelWeights weights);      ///< loads (uploads, on a GPU) the weights
  ExternModel(ExternModel&&) noexcept;             ///< moves the model
  ExternModel& operator=(ExternModel&&) noexcept;  ///< moves the model
  ~ExternModel();                                  ///< frees the model's memory

  /// The model's sizes and options.
  const ModelConfig& config() const;
  /// A cache for one sequence of at most `capacity` tokens (the model's context by default).
  Cache new_cache(int64_t capacity = 0) const;
  /// Appends `tokens` to the sequence in `cache`; writes logits [vocab] of the last token, or
  /// [tokens, vocab] for every token when `all_logits` is set.
  void forward(Cache& cache, std::span<const int32_t> tokens, std::vector<float>& logits, bool all_logits = false);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// ExternModel of the Llama family with the given tags (see Llama).
template <Precision P = f32, WeightScheme W = quant::None, KvScheme K = kv::Same, Backend B = Cpu>
using ExternLlama = ExternModel<Spec<P, W, K, B>>;

}  // namespace turbine
