#pragma once
// DeviceBuffer<T>: an owning cudaMalloc'd array. Out-of-memory says how much was asked and how much
// is free, and what to lower. PinnedBuffer<T>: the page-locked host counterpart.
#include <cstddef>
#include <utility>

#include "check.cuh"

namespace turbine::cuda {

namespace detail {

/// The move-only ownership both buffers share: count_ T at ptr_, handed back by Free()(ptr_).
template <class T, class Free>
class OwnedArray {
 public:
  OwnedArray() = default;
  OwnedArray(const OwnedArray&) = delete;
  OwnedArray& operator=(const OwnedArray&) = delete;
  /// Takes o's allocation; o is left empty.
  OwnedArray(OwnedArray&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), count_(std::exchange(o.count_, 0)) {}
  /// Frees this array's allocation and takes o's; o is left empty.
  OwnedArray& operator=(OwnedArray&& o) noexcept {
    if (this != &o) {
      reset();
      ptr_ = std::exchange(o.ptr_, nullptr);
      count_ = std::exchange(o.count_, 0);
    }
    return *this;
  }
  ~OwnedArray() { reset(); }

  /// The pointer (null when empty).
  ///@{
  T* data() { return ptr_; }
  const T* data() const { return ptr_; }
  ///@}
  /// Number of elements.
  size_t size() const { return count_; }
  /// Size in bytes.
  size_t bytes() const { return count_ * sizeof(T); }

 protected:
  explicit OwnedArray(size_t count) : count_(count) {}
  T* ptr_ = nullptr;
  size_t count_ = 0;

 private:
  void reset() {
    if (ptr_) Free()(ptr_);
    ptr_ = nullptr;
    count_ = 0;
  }
};

struct FreeDevice {
  void operator()(void* p) const { cudaFree(p); }
};
struct FreePinned {
  void operator()(void* p) const { cudaFreeHost(p); }
};

}  // namespace detail

/// An owning cudaMalloc'd array of T (move-only). Out of memory fails with the size asked, the
/// memory free and what to lower.
template <class T>
class DeviceBuffer : public detail::OwnedArray<T, detail::FreeDevice> {
 public:
  DeviceBuffer() = default;
  /// Allocates count elements (none for 0), uninitialized; `what` names the buffer in the
  /// out-of-memory message.
  explicit DeviceBuffer(size_t count, const char* what = "buffer") : detail::OwnedArray<T, detail::FreeDevice>(count) {
    if (count == 0) return;
    const cudaError_t err = cudaMalloc(&this->ptr_, count * sizeof(T));
    if (err != cudaSuccess) {  // the base then frees nothing when this constructor throws
      this->ptr_ = nullptr;
      this->count_ = 0;
    }
    if (err == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      fail("out of GPU memory allocating ", what, ": asked ", (count * sizeof(T)) >> 20, " MiB with ", free_b >> 20,
           " MiB free of ", total_b >> 20, " MiB (lower --ctx-size, the batch size or --cache-max-entry-count)");
    }
    TURBINE_CUDA_CHECK(err);
  }
};

/// PinnedBuffer<T>: an owning cudaMallocHost'd (page-locked) host array, for transfers that run
/// at full speed and truly asynchronously.
template <class T>
class PinnedBuffer : public detail::OwnedArray<T, detail::FreePinned> {
 public:
  PinnedBuffer() = default;
  /// Allocates count elements of page-locked host memory (none for 0), uninitialized.
  explicit PinnedBuffer(size_t count) : detail::OwnedArray<T, detail::FreePinned>(count) {
    if (count == 0) return;
    const cudaError_t err = cudaMallocHost(reinterpret_cast<void**>(&this->ptr_), count * sizeof(T));
    if (err != cudaSuccess) {  // the base then frees nothing when this constructor throws
      this->ptr_ = nullptr;
      this->count_ = 0;
    }
    TURBINE_CUDA_CHECK(err);
  }
};

}  // namespace turbine::cuda
