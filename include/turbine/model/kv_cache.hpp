#pragma once
// PagedKvCache<Arena>: the KV cache of one sequence, paged. Its block table lists the arena blocks
// that hold its positions in order; it grows a block at a time up to a fixed capacity (the
// context guard). A cache made on its own owns an arena (one that grows on demand, or, for storage
// that cannot grow, one of exactly the blocks its capacity needs); the serving engine's caches
// share one bounded arena (engine/paged_cache_pool.hpp), which also lets a cache start with blocks
// another sequence computed (prefix caching). HostKvCache is the host one (Transformer's Cache);
// CudaTransformer's lives on the GPU (cuda::DeviceKvStorage).
#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "../backend/cpu/attention.hpp"
#include "../core/error.hpp"
#include "config.hpp"
#include "kv_blocks.hpp"

namespace turbine {

/// The KV cache of one sequence: keys and values per layer as [positions, kv_heads, head_dim],
/// stored in blocks of an `Arena` (a BasicKvBlockArena).
template <class Arena>
class PagedKvCache {
 public:
  using arena_type = Arena;                         ///< where its blocks come from
  static constexpr int64_t kDefaultBlockSize = 64;  ///< positions per block of a cache of its own

  PagedKvCache() = default;
  /// An empty cache for model `c` of at most `capacity` positions, in an arena of its own.
  PagedKvCache(const ModelConfig& c, int64_t capacity, int64_t block_size = kDefaultBlockSize)
      : PagedKvCache(std::make_shared<Arena>(c, block_size, Arena::storage_type::kGrows ? 0 : (capacity + block_size - 1) / block_size),
                     capacity) {}
  /// An empty cache of at most `capacity` positions whose blocks come from `arena`.
  PagedKvCache(std::shared_ptr<Arena> arena, int64_t capacity) : arena_(std::move(arena)), capacity_(capacity) {}
  PagedKvCache(const PagedKvCache&) = delete;
  PagedKvCache& operator=(const PagedKvCache&) = delete;
  /// Takes over `o`'s blocks.
  PagedKvCache(PagedKvCache&& o) noexcept { swap(o); }
  /// Gives back this cache's blocks and takes over `o`'s.
  PagedKvCache& operator=(PagedKvCache&& o) noexcept {
    if (this != &o) {
      release_blocks(0);
      length_ = 0;
      swap(o);
    }
    return *this;
  }
  ~PagedKvCache() { release_blocks(0); }

  int64_t length() const { return length_; }      ///< positions held
  int64_t capacity() const { return capacity_; }  ///< the most positions it can hold
  /// Forgets positions from `n` on (a new turn that shares only a prefix); whole blocks past them
  /// go back to the arena.
  void truncate(int64_t n) {
    length_ = n < length_ ? n : length_;
    if (arena_) release_blocks(blocks_for(length_));
  }
  void clear() { truncate(0); }  ///< forgets every position

  /// Blocks needed to hold `positions` positions.
  int64_t blocks_for(int64_t positions) const {
    const int64_t bs = arena_->block_size();
    return (positions + bs - 1) / bs;
  }
  /// Blocks reserve_more(extra) would take from the arena (new blocks, and a copy of a shared
  /// last block that must be written).
  int64_t blocks_needed(int64_t extra) const {
    int64_t n = std::max<int64_t>(0, blocks_for(length_ + extra) - static_cast<int64_t>(table_.size()));
    if (extra > 0 && length_ % arena_->block_size() != 0 && !arena_->writable(table_[length_ / arena_->block_size()])) ++n;
    return n;
  }
  /// Makes room for `extra` more positions; fails past the capacity or when the arena is full.
  void reserve_more(int64_t extra) {
    const int64_t need = length_ + extra;
    check(need <= capacity_, "sequence of ", need, " tokens exceeds the context length ", capacity_,
          " (shorten the prompt, lower max_new_tokens, or raise --ctx-size up to the model's limit)");
    if (extra <= 0) return;
    const int64_t bs = arena_->block_size();
    // The block the next position falls in must be ours alone: a shared or sealed one is copied.
    if (length_ % bs != 0) {
      int32_t& last = table_[length_ / bs];
      if (!arena_->writable(last)) {
        const int32_t copy = take_block();
        arena_->copy_rows(last, copy, length_ % bs);
        arena_->release(last);
        last = copy;
      }
    }
    while (static_cast<int64_t>(table_.size()) < blocks_for(need)) table_.push_back(take_block());
  }
  /// Host arenas: stores `rows` positions from `pos` on (within the reserved blocks) for `layer`:
  /// k and v are [rows, kv_heads * head_dim].
  void write(int64_t layer, int64_t pos, const float* k, const float* v, int64_t rows) {
    const int64_t bs = arena_->block_size(), kv = arena_->kv_size();
    for (int64_t done = 0; done < rows;) {
      const int64_t p = pos + done, b = p / bs, off = p % bs, n = std::min(rows - done, bs - off);
      std::copy(k + done * kv, k + (done + n) * kv, arena_->storage().keys(table_[b], layer) + off * kv);
      std::copy(v + done * kv, v + (done + n) * kv, arena_->storage().values(table_[b], layer) + off * kv);
      done += n;
    }
  }
  /// Host arenas: layer `layer` for cpu::attention; valid until the next view() or a change of the block table.
  cpu::PagedKv view(int64_t layer) {
    k_ptrs_.resize(table_.size());
    v_ptrs_.resize(table_.size());
    for (size_t i = 0; i < table_.size(); ++i) {
      k_ptrs_[i] = arena_->storage().keys(table_[i], layer);
      v_ptrs_[i] = arena_->storage().values(table_[i], layer);
    }
    return {k_ptrs_.data(), v_ptrs_.data(), arena_->block_size()};
  }
  void advance(int64_t n) { length_ += n; }  ///< counts `n` positions written by a forward step

  /// The blocks holding positions [0, length) (and any reserved past them), in order.
  std::span<const int32_t> blocks() const { return table_; }
  /// Appends `block` (held once for this cache) as `block_size` positions already computed;
  /// only at a block boundary.
  void adopt_block(int32_t block) {
    check(length_ == static_cast<int64_t>(table_.size()) * arena_->block_size(), "adopt_block: only at a block boundary");
    check(length_ + arena_->block_size() <= capacity_, "adopt_block: past the capacity");
    table_.push_back(block);
    length_ += arena_->block_size();
  }
  Arena& arena() { return *arena_; }  ///< where the blocks live

 private:
  int32_t take_block() {
    const int32_t b = arena_->allocate();
    check(b != Arena::kNone, "the KV cache is full (", arena_->total_blocks(), " blocks of ", arena_->block_size(),
          " tokens): raise --cache-max-entry-count or lower --max-concurrent");
    return b;
  }
  void release_blocks(int64_t keep) {
    while (static_cast<int64_t>(table_.size()) > keep) {
      arena_->release(table_.back());
      table_.pop_back();
    }
  }
  void swap(PagedKvCache& o) noexcept {
    std::swap(arena_, o.arena_);
    std::swap(table_, o.table_);
    std::swap(capacity_, o.capacity_);
    std::swap(length_, o.length_);
  }

  std::shared_ptr<Arena> arena_;
  std::vector<int32_t> table_;  // [blocks] arena block of positions [i * block_size, (i + 1) * block_size)
  int64_t capacity_ = 0;
  int64_t length_ = 0;
  std::vector<const float*> k_ptrs_, v_ptrs_;  // view()'s block pointers
};

/// The KV cache of one sequence on the host (Transformer's Cache), fp32.
using HostKvCache = PagedKvCache<KvBlockArena>;

/// True for the PagedKvCache types (the serving engine pages them).
template <class C>
inline constexpr bool is_paged_kv_cache = false;
/// A PagedKvCache over any arena.
template <class A>
inline constexpr bool is_paged_kv_cache<PagedKvCache<A>> = true;

}  // namespace turbine
