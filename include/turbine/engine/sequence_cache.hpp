#pragma once
// Where the engine gets each running sequence's KV cache. The engine asks a pool for a cache when
// a sequence starts (or restarts after a preemption), for room before each step, and hands the
// cache back the moment the sequence ends or is preempted. Two pools: PerSequenceCachePool (a
// cache of its own per sequence, for models whose cache is not paged) and PagedCachePool
// (paged_cache_pool.hpp: one bounded block arena, preemption, prefix caching).
#include <concepts>
#include <cstdint>
#include <memory>
#include <span>

#include "engine_options.hpp"

namespace turbine {

/// What the scheduler uses of a sequence's cache (the model's forward() does the rest).
template <class C>
concept SequenceKvCache = requires(C& c, const C& cc, int64_t n) {
  { cc.length() } -> std::convertible_to<int64_t>;
  { cc.capacity() } -> std::convertible_to<int64_t>;
  c.truncate(n);
};

/// What a pool tells about its memory.
struct CachePoolStats {
  int64_t blocks = 0;          ///< blocks in the budget (0: no budget)
  int64_t blocks_used = 0;     ///< held by running sequences
  int64_t blocks_cached = 0;   ///< sealed blocks held by nobody, kept for prefix reuse
};

/// One growable cache per sequence, allocated on demand and freed on release; never full.
template <class Model>
class PerSequenceCachePool {
 public:
  using Cache = typename Model::Cache;  ///< the model's cache of one sequence
  static_assert(SequenceKvCache<Cache>, "Model::Cache must provide length(), capacity() and truncate()");

  /// Caches of at most `capacity` tokens each (the options' cache_* fields do not apply).
  PerSequenceCachePool(const Model& model, int64_t capacity, const EngineOptions& = {}) : model_(&model), capacity_(capacity) {}

  int64_t capacity() const { return capacity_; }  ///< tokens per sequence
  /// A cache for a sequence whose history is `tokens` (none of it reused); null when there is no room.
  std::unique_ptr<Cache> acquire(std::span<const int32_t> /*tokens*/, int64_t /*max_reuse*/) {
    return std::make_unique<Cache>(model_->new_cache(capacity_));
  }
  /// Room for `extra` more positions: always (the cache grows itself).
  bool reserve(Cache&, int64_t /*extra*/) { return true; }
  /// After a step: nothing to register.
  void commit(Cache&, std::span<const int32_t> /*tokens*/) {}
  /// Takes back the cache of a sequence that ended or was preempted.
  void release(std::unique_ptr<Cache> cache, std::span<const int32_t> /*tokens*/) { cache.reset(); }
  CachePoolStats stats() const { return {}; }  ///< no budget to report

 private:
  const Model* model_;
  int64_t capacity_;
};

}  // namespace turbine
