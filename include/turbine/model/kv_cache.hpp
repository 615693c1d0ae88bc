#pragma once
// Host KV cache of one sequence: per layer, keys and values as [positions, kv_heads, head_dim]
// fp32, grown on demand up to a fixed capacity (the context guard).
#include <algorithm>
#include <cstdint>
#include <vector>

#include "../core/error.hpp"
#include "../model/config.hpp"

namespace turbine {

/// The KV cache of one sequence on the host (Transformer's Cache), grown on demand.
class HostKvCache {
 public:
  HostKvCache() = default;
  /// An empty cache for model `c` that holds at most `capacity` positions.
  HostKvCache(const ModelConfig& c, int64_t capacity)
      : layers_(static_cast<size_t>(c.num_layers)), kv_size_(c.kv_size()), capacity_(capacity) {}

  int64_t length() const { return length_; }      ///< positions held
  int64_t capacity() const { return capacity_; }  ///< the most positions it can hold
  /// Forgets positions from `n` on (a new turn that shares only a prefix).
  void truncate(int64_t n) { length_ = n < length_ ? n : length_; }
  void clear() { length_ = 0; }  ///< forgets every position

  /// Makes room for `extra` more positions; fails past the capacity.
  void reserve_more(int64_t extra) {
    const int64_t need = length_ + extra;
    check(need <= capacity_, "sequence of ", need, " tokens exceeds the context length ", capacity_,
          " (shorten the prompt, lower max_new_tokens, or raise --ctx-size up to the model's limit)");
    const size_t floats = static_cast<size_t>(need * kv_size_);
    for (auto& l : layers_) {
      if (l.k.size() < floats) {
        const size_t grown = std::max(floats, std::min(l.k.size() * 2, static_cast<size_t>(capacity_ * kv_size_)));
        l.k.resize(grown);
        l.v.resize(grown);
      }
    }
  }
  float* keys(int64_t layer) { return layers_[layer].k.data(); }    ///< [positions, kv_heads, head_dim]
  float* values(int64_t layer) { return layers_[layer].v.data(); }  ///< [positions, kv_heads, head_dim]
  void advance(int64_t n) { length_ += n; }  ///< counts `n` positions written by a forward step

 private:
  struct Layer {
    std::vector<float> k, v;  // [positions, kv_heads, head_dim]
  };
  std::vector<Layer> layers_;
  int64_t kv_size_ = 0;
  int64_t capacity_ = 0;
  int64_t length_ = 0;
};

}  // namespace turbine
