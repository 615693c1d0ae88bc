#pragma once
// PagedCachePool: the serving engine's KV caches as block tables over one bounded block arena
// (the host's KvBlockArena, or the GPU's DeviceKvArena).
// The budget is a number of blocks fixed at start; a sequence takes blocks as it grows and gives
// them back when it ends or is preempted. With prefix caching on, every full block is sealed under
// its tokens and the block before it, and a new sequence starts with the longest chain of sealed
// blocks that matches its prompt: those positions are not computed again. Prefill runs in chunks
// that start at multiples of the model's kPrefillAlign, and the block size is a multiple of it, so
// a prompt block taken from the cache holds bit for bit what the sequence would have computed.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <type_traits>

#include "../core/system_memory.hpp"
#include "../model/kv_cache.hpp"
#include "sequence_cache.hpp"

namespace turbine {

/// Caches of a Model whose Cache is a PagedKvCache, from one shared budget of blocks.
template <class Model>
class PagedCachePool {
 public:
  using Cache = typename Model::Cache;  ///< one sequence's block table
  static_assert(is_paged_kv_cache<Cache>, "PagedCachePool pages PagedKvCache (HostKvCache, DeviceKvCache)");
  using Arena = typename Cache::arena_type;  ///< where the blocks live

  /// Sequences of at most `capacity` tokens; the budget, block size and prefix caching from `o`.
  PagedCachePool(const Model& model, int64_t capacity, const EngineOptions& o) : prefix_caching_(o.prefix_caching) {
    const int64_t bs = o.cache_block_size;
    check(bs > 0, "--cache-block-size must be > 0 (got ", bs, ")");
    int64_t chunk = 1;
    if constexpr (requires { Model::kPrefillAlign; }) chunk = Model::kPrefillAlign;
    check(!prefix_caching_ || bs % chunk == 0, "--cache-block-size must be a multiple of ", chunk,
          " with prefix caching (the model's prefill alignment; got ", bs, ")");
    const int64_t per_sequence = (capacity + bs - 1) / bs;
    const int64_t blocks = o.cache_blocks > 0 ? o.cache_blocks : std::max<int64_t>(1, o.max_concurrent) * per_sequence;
    arena_ = std::make_shared<Arena>(model.config(), bs, blocks);
    capacity_ = std::min(capacity, blocks * bs);  // one sequence alone always fits
  }

  int64_t capacity() const { return capacity_; }  ///< tokens per sequence
  Arena& arena() { return *arena_; }              ///< the blocks

  /// A cache for a sequence whose history is `tokens`, starting with the sealed blocks that hold
  /// its first positions (at most `max_reuse` of them) when prefix caching is on.
  std::unique_ptr<Cache> acquire(std::span<const int32_t> tokens, int64_t max_reuse) {
    auto cache = std::make_unique<Cache>(arena_, capacity_);
    if (!prefix_caching_) return cache;
    const int64_t bs = arena_->block_size();
    typename Arena::Parent parent;
    for (int64_t i = 0; (i + 1) * bs <= std::min<int64_t>(max_reuse, static_cast<int64_t>(tokens.size())); ++i) {
      const int32_t b = arena_->find(parent, tokens.subspan(static_cast<size_t>(i * bs), static_cast<size_t>(bs)));
      if (b == Arena::kNone) break;
      cache->adopt_block(b);
      parent = {b, arena_->generation(b)};
    }
    return cache;
  }
  /// Takes the blocks for `extra` more positions of `cache`; false (taking none) when the budget
  /// cannot cover them.
  bool reserve(Cache& cache, int64_t extra) {
    if (cache.blocks_needed(extra) > arena_->available()) return false;
    cache.reserve_more(extra);
    return true;
  }
  /// After a step: with prefix caching, seals the full blocks of `cache`, whose positions hold
  /// the first cache.length() of `tokens`.
  void commit(Cache& cache, std::span<const int32_t> tokens) {
    if (!prefix_caching_) return;
    const int64_t bs = arena_->block_size();
    const int64_t full = std::min<int64_t>(cache.length(), static_cast<int64_t>(tokens.size())) / bs;
    const std::span<const int32_t> table = cache.blocks();
    typename Arena::Parent parent;
    for (int64_t i = 0; i < full; ++i) {
      const int32_t b = table[static_cast<size_t>(i)];
      // A chain is matched from its first block, so a block after one left unsealed (its content
      // was sealed by another sequence) could never be found.
      if (!arena_->sealed(b) && !arena_->seal(b, parent, tokens.subspan(static_cast<size_t>(i * bs), static_cast<size_t>(bs)))) break;
      parent = {b, arena_->generation(b)};
    }
  }
  /// Takes back the cache of a sequence that ended or was preempted; its full blocks stay cached
  /// (sealed) for reuse when prefix caching is on.
  void release(std::unique_ptr<Cache> cache, std::span<const int32_t> tokens) {
    if (cache) commit(*cache, tokens);
    cache.reset();
  }
  /// The budget and what holds it.
  CachePoolStats stats() const {
    return {arena_->total_blocks(), arena_->in_use(), arena_->cached_blocks()};
  }

 private:
  bool prefix_caching_;
  std::shared_ptr<Arena> arena_;
  int64_t capacity_ = 0;
};

/// Bytes of KV cache per position of `model` (keys and values of every layer): the model says,
/// or fp32 (the CPU model's cache).
template <class Model>
size_t kv_bytes_per_position(const Model& model) {
  if constexpr (requires { model.kv_bytes_per_position(); }) return model.kv_bytes_per_position();
  else return static_cast<size_t>(2 * model.config().num_layers * model.config().kv_size()) * sizeof(float);
}

/// Blocks of `block_size` positions of `model`'s KV cache in `gib` GiB, or (`gib` 0) in `fraction`
/// of the memory available now (after the weights are loaded: the GPU's free memory for a model
/// that says so, else the system's), as LMDeploy's --cache-max-entry-count; at least one block.
template <class Model>
int64_t kv_cache_blocks_for_budget(const Model& model, int64_t block_size, double fraction, double gib) {
  check(block_size > 0, "--cache-block-size must be > 0 (got ", block_size, ")");
  check(gib >= 0, "--cache-gib must be >= 0 (got ", gib, ")");
  check(fraction > 0 && fraction <= 1, "--cache-max-entry-count must be in (0, 1] (got ", fraction, ")");
  size_t available = 0;
  if (gib <= 0) {
    if constexpr (requires { model.kv_memory_available(); }) available = model.kv_memory_available();
    else available = available_memory_bytes();
  }
  const double block_bytes = static_cast<double>(kv_bytes_per_position(model)) * static_cast<double>(block_size);
  const double bytes = gib > 0 ? gib * static_cast<double>(1ull << 30) : fraction * static_cast<double>(available);
  return std::max<int64_t>(1, static_cast<int64_t>(bytes / block_bytes));
}

/// The engine's pool for `Model`: paged when its cache is a PagedKvCache, else one cache per sequence.
template <class Model>
using DefaultCachePool = std::conditional_t<is_paged_kv_cache<typename Model::Cache>, PagedCachePool<Model>,
                                            PerSequenceCachePool<Model>>;

}  // namespace turbine
