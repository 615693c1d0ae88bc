#pragma once
// The definitions of ExternModel<Spec>, and TURBINE_INSTANTIATE_MODEL(Spec) that compiles them.
// Include it in the one translation unit that compiles a model type, after the backend's
// umbrella: <turbine/turbine.cuh> (nvcc) for a Cuda Spec, <turbine/turbine.hpp> for Cpu.
#include "model/extern_model.hpp"
#include "model/transformer.hpp"

/// @file
/// Compiles an ExternModel: include after the backend's umbrella, then TURBINE_INSTANTIATE_MODEL(Spec).

namespace turbine {

/// @cond TURBINE_INTERNAL
template <class S>
struct ExternCache<S>::Impl {
  using Inner = typename ModelTypeOf<S>::type::Cache;
  explicit Impl(Inner c) : cache(std::move(c)) {}
  Inner cache;
};

template <class S>
ExternCache<S>::ExternCache(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
template <class S>
ExternCache<S>::ExternCache(ExternCache&&) noexcept = default;
template <class S>
ExternCache<S>& ExternCache<S>::operator=(ExternCache&&) noexcept = default;
template <class S>
ExternCache<S>::~ExternCache() = default;
template <class S>
int64_t ExternCache<S>::length() const { return impl_->cache.length(); }
template <class S>
int64_t ExternCache<S>::capacity() const { return impl_->cache.capacity(); }
template <class S>
void ExternCache<S>::truncate(int64_t n) { impl_->cache.truncate(n); }
template <class S>
void ExternCache<S>::clear() { impl_->cache.clear(); }

template <class S>
struct ExternModel<S>::Impl {
  explicit Impl(ModelWeights w) : model(std::move(w)) {}
  typename ModelTypeOf<S>::type model;
};

template <class S>
ExternModel<S>::ExternModel(ModelWeights weights) : impl_(std::make_unique<Impl>(std::move(weights))) {}
template <class S>
ExternModel<S>::ExternModel(ExternModel&&) noexcept = default;
template <class S>
ExternModel<S>& ExternModel<S>::operator=(ExternModel&&) noexcept = default;
template <class S>
ExternModel<S>::~ExternModel() = default;
template <class S>
const ModelConfig& ExternModel<S>::config() const { return impl_->model.config(); }
template <class S>
auto ExternModel<S>::new_cache(int64_t capacity) const -> Cache {
  return Cache(std::make_unique<typename Cache::Impl>(impl_->model.new_cache(capacity)));
}
template <class S>
void ExternModel<S>::forward(Cache& cache, std::span<const int32_t> tokens, std::vector<float>& logits, bool all_logits) {
  impl_->model.forward(cache.impl_->cache, tokens, logits, all_logits);
}
/// @endcond

}  // namespace turbine

/// Compiles ExternModel<Spec> (and its cache) in this translation unit, for every other one to
/// link against: `TURBINE_INSTANTIATE_MODEL(turbine::Spec<turbine::f16, turbine::quant::None,
/// turbine::kv::Same, turbine::Cuda>)` at namespace scope, once in the program.
#define TURBINE_INSTANTIATE_MODEL(...)             \
  template class turbine::ExternCache<__VA_ARGS__>; \
  template class turbine::ExternModel<__VA_ARGS__>
