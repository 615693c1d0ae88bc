#pragma once
// Asks L2 for up to four device ranges ahead of the kernels that will read them (Hopper's bulk
// prefetch, cp.async.bulk.prefetch.L2: a hint, no copy, nothing to wait for). The decode step uses
// it on a side stream to have the next projections' weights on the way while the attention and
// the norm kernels leave DRAM idle (CudaTransformer's DecodeFusion::l2_ahead_mb). Before sm_90 it
// does nothing.
#include <cstddef>
#include <cstdint>

#include "check.cuh"
#include "vec.cuh"

namespace turbine::cuda {

/// One range to prefetch: `bytes` from `p` (16-byte aligned; a tail under 16 bytes is left out).
struct L2Range {
  const void* p = nullptr;
  size_t bytes = 0;
};
struct L2Ranges {
  L2Range r[4];
  int count = 0;
  /// Adds a range (ignored when empty or when four are held).
  void add(const void* p, size_t bytes) {
    if (p && bytes >= 16 && count < 4) r[count++] = {p, bytes};
  }
};

namespace detail {

inline constexpr size_t kL2PrefetchPiece = size_t(64) << 10;  // bytes a thread asks for

// Thread i asks for piece i of the ranges laid end to end.
__global__ static void l2_prefetch_kernel(L2Ranges ranges) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  size_t piece = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  for (int i = 0; i < ranges.count; ++i) {
    const size_t pieces = (ranges.r[i].bytes + kL2PrefetchPiece - 1) / kL2PrefetchPiece;
    if (piece < pieces) {
      const size_t at = piece * kL2PrefetchPiece;
      const size_t left = ranges.r[i].bytes - at;
      const uint32_t size = static_cast<uint32_t>((left < kL2PrefetchPiece ? left : kL2PrefetchPiece) & ~size_t(15));
      if (size > 0)
        asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;\n" ::"l"(static_cast<const char*>(ranges.r[i].p) + at),
                     "r"(size)
                     : "memory");
      return;
    }
    piece -= pieces;
  }
#else
  (void)ranges;
#endif
}

}  // namespace detail

/// Enqueues the prefetch of `ranges` on `stream` (nothing when there are none).
inline void l2_prefetch(const L2Ranges& ranges, cudaStream_t stream) {
  size_t pieces = 0;
  for (int i = 0; i < ranges.count; ++i) {
    check(reinterpret_cast<uintptr_t>(ranges.r[i].p) % 16 == 0, "l2_prefetch: range ", i, " is not 16-byte aligned");
    pieces += (ranges.r[i].bytes + detail::kL2PrefetchPiece - 1) / detail::kL2PrefetchPiece;
  }
  if (pieces == 0) return;
  constexpr unsigned kThreads = 128;
  detail::l2_prefetch_kernel<<<static_cast<unsigned>((pieces + kThreads - 1) / kThreads), kThreads, 0, stream>>>(ranges);
  TURBINE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace turbine::cuda
