#pragma once
// BasicKvBlockArena<Storage>: the blocks of paged KV caches. A block holds the keys and values of
// `block_size` consecutive positions for every layer; where they live is the Storage's business
// (HostKvStorage below: [layers][k, v][block_size, kv_heads * head_dim] fp32 in host memory;
// cuda::DeviceKvStorage: per-layer pools on the GPU). Caches hold blocks by reference count; a
// block whose count drops to zero goes back to the free list (its memory to the system), unless it
// is sealed. KvBlockArena is the host arena.
//
// Sealing (prefix caching): a full block can be registered under its content, the tokens it holds
// and the block before it (id and generation), so that a later sequence whose prompt starts the
// same way takes it instead of computing it again. A sealed block is never written (a cache that
// must write into one copies it first); with no holder left it waits on a least-recently-used
// list and is evicted only when no free block is left. Every allocation bumps a block's
// generation, so a block sealed after an evicted parent can never be matched by a stale chain.
//
// An arena is bounded (a budget of blocks reserved once, the serving engine's) or, where the
// storage can grow, grows on demand (a cache of its own, for Pipeline and tests). It is not
// thread-safe: one thread drives it.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <list>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "../core/anonymous_memory.hpp"
#include "../core/error.hpp"
#include "config.hpp"

namespace turbine {

/// Host storage of KV blocks: [layers][k, v][block_size, kv_size] fp32 per block, reserved at once
/// (bounded) or allocated a block at a time (growing); a freed block's pages go back to the system.
class HostKvStorage {
 public:
  static constexpr bool kGrows = true;  ///< blocks can be added one at a time

  /// Room for `max_blocks` blocks of `block_size` positions for model `c` (0: none yet, grow()).
  HostKvStorage(const ModelConfig& c, int64_t block_size, int64_t max_blocks)
      : layers_(c.num_layers), kv_size_(c.kv_size()), block_size_(block_size) {
    if (max_blocks > 0) {
      region_ = AnonymousMemory(static_cast<size_t>(max_blocks) * block_bytes(), "KV cache");
      for (int64_t b = 0; b < max_blocks; ++b) base_.push_back(reinterpret_cast<float*>(region_.data()) + b * block_floats());
    }
  }
  int64_t blocks() const { return static_cast<int64_t>(base_.size()); }  ///< blocks held
  /// Bytes of one block (keys and values of every layer).
  size_t block_bytes() const { return static_cast<size_t>(block_floats()) * sizeof(float); }
  /// One more block (of a storage made with no reserved region).
  void grow() {
    owned_.push_back(std::make_unique<float[]>(static_cast<size_t>(block_floats())));
    base_.push_back(owned_.back().get());
  }
  /// Block `b` is free: its pages go back to the system (a reserved region only).
  void discard(int32_t b) {
    if (region_.data()) region_.discard(static_cast<size_t>(b) * block_bytes(), block_bytes());
  }
  /// Copies the first `rows` positions of every layer of block `from` into block `to`.
  void copy_rows(int32_t from, int32_t to, int64_t rows) {
    for (int64_t l = 0; l < 2 * layers_; ++l)
      std::memcpy(base_[to] + l * block_size_ * kv_size_, base_[from] + l * block_size_ * kv_size_,
                  static_cast<size_t>(rows * kv_size_) * sizeof(float));
  }
  float* keys(int32_t b, int64_t layer) { return base_[b] + (2 * layer) * block_size_ * kv_size_; }  ///< [block_size, kv_size]
  float* values(int32_t b, int64_t layer) { return base_[b] + (2 * layer + 1) * block_size_ * kv_size_; }  ///< [block_size, kv_size]

 private:
  int64_t block_floats() const { return layers_ * 2 * block_size_ * kv_size_; }
  int64_t layers_, kv_size_, block_size_;
  AnonymousMemory region_;                       // bounded: every block, reserved at once
  std::vector<std::unique_ptr<float[]>> owned_;  // growing: one allocation per block
  std::vector<float*> base_;                     // [blocks] first float of each block
};

/// Blocks of KV positions for one model, shared by the caches of many sequences, kept in a
/// `Storage` (HostKvStorage or cuda::DeviceKvStorage).
template <class Storage>
class BasicKvBlockArena {
 public:
  using storage_type = Storage;         ///< where the blocks live
  static constexpr int32_t kNone = -1;  ///< no block

  /// Where a chain of sealed blocks hangs: the block before (kNone for the first) and its generation.
  struct Parent {
    int32_t block = kNone;    ///< the previous block of the sequence
    uint64_t generation = 0;  ///< its generation when this block was sealed
    bool operator==(const Parent&) const = default;  ///< the same block and generation
  };

  /// Blocks of `block_size` positions for model `c`; `max_blocks` of them reserved at once, or
  /// (storage that grows only) as many as asked for, allocated one at a time, when `max_blocks` is 0.
  BasicKvBlockArena(const ModelConfig& c, int64_t block_size, int64_t max_blocks = 0)
      : layers_(c.num_layers), kv_size_(c.kv_size()), block_size_(block_size), bounded_(max_blocks > 0),
        storage_((check_sizes(block_size, max_blocks), c), block_size, max_blocks) {
    meta_.resize(static_cast<size_t>(storage_.blocks()));
    for (int64_t b = 0; b < storage_.blocks(); ++b) free_.push_back(static_cast<int32_t>(b));
  }
  BasicKvBlockArena(const BasicKvBlockArena&) = delete;
  BasicKvBlockArena& operator=(const BasicKvBlockArena&) = delete;

  int64_t block_size() const { return block_size_; }  ///< positions per block
  int64_t layers() const { return layers_; }          ///< layers per block
  int64_t kv_size() const { return kv_size_; }        ///< floats of one position's keys (or values) in one layer
  /// Bytes of one block (keys and values of every layer).
  size_t block_bytes() const { return storage_.block_bytes(); }
  Storage& storage() { return storage_; }  ///< the blocks' memory
  bool bounded() const { return bounded_; }  ///< a fixed budget (else it grows on demand)
  /// Blocks in the budget (bounded), or allocated so far.
  int64_t total_blocks() const { return static_cast<int64_t>(meta_.size()); }
  /// Blocks an allocation can still get: free ones and sealed ones nobody holds.
  int64_t available() const { return bounded_ ? static_cast<int64_t>(free_.size() + lru_.size()) : INT64_MAX; }
  int64_t free_blocks() const { return static_cast<int64_t>(free_.size()); }  ///< on the free list
  int64_t cached_blocks() const { return static_cast<int64_t>(lru_.size()); }  ///< sealed, held by nobody
  int64_t in_use() const { return total_blocks() - free_blocks() - cached_blocks(); }  ///< held by a cache

  /// A block held once, with content to be written; kNone when a bounded arena has none left
  /// (a sealed block nobody holds is evicted for it, the least recently used first).
  int32_t allocate() {
    int32_t b = kNone;
    if (!free_.empty()) {
      b = free_.back();
      free_.pop_back();
    } else if (!lru_.empty()) {
      b = lru_.front();
      unseal(b);
    } else if (!bounded_) {
      storage_.grow();
      meta_.emplace_back();
      b = static_cast<int32_t>(meta_.size() - 1);
    } else {
      return kNone;
    }
    Meta& m = meta_[b];
    m.refs = 1;
    ++m.generation;
    return b;
  }
  /// One more holder of block `b` (a sealed block nobody held leaves the eviction list).
  void retain(int32_t b) {
    Meta& m = at(b);
    if (m.refs++ == 0 && m.sealed) lru_.erase(m.lru);
  }
  /// One holder fewer; the last one returns the block to the free list, or to the eviction list
  /// if it is sealed.
  void release(int32_t b) {
    Meta& m = at(b);
    check(m.refs > 0, "KV block ", b, " released more often than held");
    if (--m.refs > 0) return;
    if (m.sealed) {
      m.lru = lru_.insert(lru_.end(), b);
      return;
    }
    free_.push_back(b);
    storage_.discard(b);
  }
  int32_t refs(int32_t b) const { return at(b).refs; }                   ///< holders of block `b`
  bool sealed(int32_t b) const { return at(b).sealed; }                  ///< registered for reuse
  uint64_t generation(int32_t b) const { return at(b).generation; }      ///< bumped by each allocation
  /// True when a cache holding `b` may write into it (nobody else holds it, it is not sealed).
  bool writable(int32_t b) const { return at(b).refs == 1 && !at(b).sealed; }

  /// Copies the first `rows` positions of every layer of block `from` into block `to`.
  void copy_rows(int32_t from, int32_t to, int64_t rows) { storage_.copy_rows(from, to, rows); }

  /// Registers the full block `b` as holding `tokens` (block_size of them) after `parent`. Returns
  /// false (and leaves it unsealed) when the same content is sealed already.
  bool seal(int32_t b, Parent parent, std::span<const int32_t> tokens) {
    check(static_cast<int64_t>(tokens.size()) == block_size_, "seal: a block holds ", block_size_, " tokens");
    Meta& m = at(b);
    if (m.sealed) return true;
    const uint64_t key = content_hash(parent, tokens);
    if (lookup(key, parent, tokens) != kNone) return false;
    m.sealed = true;
    m.parent = parent;
    m.key = key;
    m.tokens.assign(tokens.begin(), tokens.end());
    index_.emplace(key, b);
    return true;
  }
  /// The sealed block holding `tokens` after `parent`, now held once more; kNone if there is none.
  int32_t find(Parent parent, std::span<const int32_t> tokens) {
    const int32_t b = lookup(content_hash(parent, tokens), parent, tokens);
    if (b != kNone) retain(b);
    return b;
  }

 private:
  struct Meta {
    int32_t refs = 0;
    uint64_t generation = 0;
    bool sealed = false;
    Parent parent;
    uint64_t key = 0;
    std::vector<int32_t> tokens;  // what a sealed block holds (checked on every match: no false hits)
    std::list<int32_t>::iterator lru;
  };

  static int check_sizes(int64_t block_size, int64_t max_blocks) {
    check(block_size > 0, "KV cache block size must be > 0 (got ", block_size, ")");
    check(max_blocks >= 0, "KV cache block count must be >= 0 (got ", max_blocks, ")");
    check(max_blocks > 0 || Storage::kGrows, "this KV cache storage cannot grow: give it a number of blocks");
    return 0;
  }
  Meta& at(int32_t b) {
    check(b >= 0 && b < total_blocks(), "KV block ", b, " does not exist");
    return meta_[b];
  }
  const Meta& at(int32_t b) const { return const_cast<BasicKvBlockArena*>(this)->at(b); }

  static uint64_t content_hash(Parent p, std::span<const int32_t> tokens) {
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (static_cast<uint64_t>(static_cast<uint32_t>(p.block)) << 32) ^ p.generation;
    for (int32_t t : tokens) {  // FNV-1a over the ids, then a final mix
      h ^= static_cast<uint32_t>(t);
      h *= 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 33);
  }
  int32_t lookup(uint64_t key, Parent parent, std::span<const int32_t> tokens) const {
    auto [lo, hi] = index_.equal_range(key);
    for (auto it = lo; it != hi; ++it) {
      const Meta& m = meta_[it->second];
      if (m.parent == parent && std::equal(m.tokens.begin(), m.tokens.end(), tokens.begin(), tokens.end())) return it->second;
    }
    return kNone;
  }
  // Takes the unheld sealed block `b` off the eviction list and out of the index.
  void unseal(int32_t b) {
    Meta& m = meta_[b];
    lru_.erase(m.lru);
    auto [lo, hi] = index_.equal_range(m.key);
    for (auto it = lo; it != hi; ++it)
      if (it->second == b) {
        index_.erase(it);
        break;
      }
    m.sealed = false;
    m.tokens.clear();
  }

  int64_t layers_, kv_size_, block_size_;
  bool bounded_;
  Storage storage_;
  std::vector<Meta> meta_;                    // [blocks]
  std::vector<int32_t> free_;
  std::list<int32_t> lru_;                    // sealed blocks nobody holds, least recently used first
  std::unordered_multimap<uint64_t, int32_t> index_;  // content hash -> sealed block
};

/// The host arena (Transformer's caches).
using KvBlockArena = BasicKvBlockArena<HostKvStorage>;

}  // namespace turbine
