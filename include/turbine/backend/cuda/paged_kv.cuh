#pragma once
// Paged KV caches on the GPU. DeviceKvStorage<T> holds the blocks of a BasicKvBlockArena: one
// allocation, laid out [layer][k, v][blocks * block_size, kv_size], so that each layer's keys (and
// values) are one pool of rows and position p of a sequence lives at row
// table[p / block_size] * block_size + p % block_size of it. PagedKvTable is what the kernels read
// of a batch's block tables; the rope/cache-store kernels write at such rows, both attention
// kernels read through it. A null table means the rows are the positions (a contiguous cache).
#include <cstdint>

#include "check.cuh"
#include "device_buffer.cuh"
#include "../../model/config.hpp"

namespace turbine::cuda {

/// The block tables of a batch as the kernels read them (a plain struct: passed by value).
struct PagedKvTable {
  const int* blocks = nullptr;  ///< [batch, stride] device: block of positions [i * 2^shift, (i + 1) * 2^shift); null: rows = positions
  int stride = 0;               ///< entries per sequence in `blocks`
  int shift = 0;                ///< log2 of the block size

  /// The pool row of position `p` of sequence `seq`.
  __host__ __device__ __forceinline__ int64_t row(int seq, int p) const {
    if (!blocks) return p;
    return (int64_t(blocks[int64_t(seq) * stride + (p >> shift)]) << shift) | (p & ((1 << shift) - 1));
  }
};

/// log2 of `block_size`, which the GPU kernels need to be a power of two.
inline int block_shift(int64_t block_size) {
  check(block_size > 0 && (block_size & (block_size - 1)) == 0,
        "--cache-block-size must be a power of two on the GPU (got ", block_size, ")");
  int s = 0;
  while ((int64_t(1) << s) < block_size) ++s;
  return s;
}

/// The GPU storage of a KV block arena (see the top of this file); a fixed number of blocks.
template <class T>
class DeviceKvStorage {
 public:
  static constexpr bool kGrows = false;  ///< reserved at once: the kernels bake the pools' addresses

  /// Room for `max_blocks` blocks of `block_size` positions of model `c`.
  DeviceKvStorage(const ModelConfig& c, int64_t block_size, int64_t max_blocks)
      : layers_(c.num_layers), kv_size_(c.kv_size()), block_size_(block_size), blocks_(max_blocks),
        shift_(::turbine::cuda::block_shift(block_size)),
        data_(static_cast<size_t>(2 * c.num_layers * max_blocks * block_size * c.kv_size()), "KV cache") {}

  int64_t blocks() const { return blocks_; }  ///< blocks held
  /// Bytes of one block (keys and values of every layer).
  size_t block_bytes() const { return static_cast<size_t>(2 * layers_ * block_size_ * kv_size_) * sizeof(T); }
  int block_shift() const { return shift_; }  ///< log2 of the block size
  void grow() { fail("the GPU KV cache cannot grow"); }  ///< never called (kGrows is false)
  void discard(int32_t) {}  ///< device memory stays reserved
  /// Copies the first `rows` positions of every layer of block `from` into block `to` (a shared
  /// block about to be written: copy on write).
  void copy_rows(int32_t from, int32_t to, int64_t rows) {
    for (int64_t l = 0; l < layers_; ++l)
      for (T* pool : {keys(l), values(l)})
        TURBINE_CUDA_CHECK(cudaMemcpy(pool + int64_t(to) * block_size_ * kv_size_, pool + int64_t(from) * block_size_ * kv_size_,
                                      static_cast<size_t>(rows * kv_size_) * sizeof(T), cudaMemcpyDeviceToDevice));
    // A device-to-device cudaMemcpy returns early, and the model's stream does not wait for the
    // legacy stream: finish here (copies on write are rare).
    TURBINE_CUDA_CHECK(cudaStreamSynchronize(nullptr));
  }
  /// Layer `layer`'s key pool: [blocks * block_size, kv_size].
  T* keys(int64_t layer) { return data_.data() + (2 * layer) * pool_elems(); }
  /// Layer `layer`'s value pool: [blocks * block_size, kv_size].
  T* values(int64_t layer) { return data_.data() + (2 * layer + 1) * pool_elems(); }

 private:
  int64_t pool_elems() const { return blocks_ * block_size_ * kv_size_; }
  int64_t layers_, kv_size_, block_size_, blocks_;
  int shift_;
  DeviceBuffer<T> data_;
};

/// Bytes of GPU memory free now (after the weights are loaded): the KV budget's base.
inline size_t device_free_bytes() {
  size_t free_b = 0, total_b = 0;
  TURBINE_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  return free_b;
}

}  // namespace turbine::cuda
