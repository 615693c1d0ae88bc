#pragma once
// Asynchronous global -> shared copies (cp.async, sm_80+), the one set of helpers every kernel
// that stages tiles through shared memory uses (attention, the W4 GEMMs, the quantized KV tiles).
// A copy whose predicate is false reads nothing and zero-fills its destination, so partial tiles
// hold zeros, never stale shared memory that could be NaN. The commit and wait carry a "memory"
// clobber: the compiler must not move shared-memory reads of the copied data above the wait.
#include <cstdint>

namespace turbine::cuda {

/// A generic pointer into shared memory as the 32-bit shared-space address the PTX wants.
__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

/// 16 bytes, bypassing L1 (streamed tiles); zero-filled when `pred` is false.
__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, bool pred) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(pred ? 16 : 0));
}

/// 4 bytes through L1 (cp.async.cg takes 16 only): scales and zeros; zero-filled when `pred` is false.
__device__ __forceinline__ void cp_async4(uint32_t dst, const void* src, bool pred) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(src), "r"(pred ? 4 : 0));
}

/// Closes the group of copies issued since the last commit.
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

/// Waits until at most N committed groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

}  // namespace turbine::cuda
