#pragma once
// Where the engine gets each running sequence's KV cache. The engine asks a pool for a cache when
// a request starts and hands it back the moment the request ends; it needs nothing of the cache
// but what SequenceKvCache names, so a paged pool (block tables over one preallocated arena) can
// replace PerSequenceCachePool without touching the scheduler.
#include <concepts>
#include <cstdint>
#include <memory>

namespace turbine {

/// What the scheduler uses of a sequence's cache (the model's forward() does the rest).
template <class C>
concept SequenceKvCache = requires(C& c, const C& cc, int64_t n) {
  { cc.length() } -> std::convertible_to<int64_t>;
  { cc.capacity() } -> std::convertible_to<int64_t>;
  c.truncate(n);
};

/// One growable HostKvCache per sequence, allocated on demand and freed on release.
template <class Model>
class PerSequenceCachePool {
 public:
  using Cache = typename Model::Cache;  ///< the model's cache of one sequence
  static_assert(SequenceKvCache<Cache>, "Model::Cache must provide length(), capacity() and truncate()");

  /// Caches of at most `capacity` tokens each.
  PerSequenceCachePool(const Model& model, int64_t capacity) : model_(&model), capacity_(capacity) {}

  int64_t capacity() const { return capacity_; }  ///< tokens per sequence
  /// A cache for a new sequence; null when there is no room (the request then waits).
  std::unique_ptr<Cache> acquire() { return std::make_unique<Cache>(model_->new_cache(capacity_)); }
  /// Takes back the cache of a sequence that ended.
  void release(std::unique_ptr<Cache> cache) { cache.reset(); }

 private:
  const Model* model_;
  int64_t capacity_;
};

}  // namespace turbine
