#pragma once
// Decode GEMV: y[t, n] = sum_k x[t, k] * W[n, k] (+ bias[n]) for 1..8 tokens, W row-major [N, K].
//
// Batch-1..8 decode reads every weight once per call, so the kernel is built around streaming W at
// DRAM bandwidth: each warp owns 16 rows and a share of K, loads W with 16-byte non-L1-allocating
// loads (8 rows x 64 contiguous bytes per instruction, 4 or 8 instructions in flight per row pair),
// and multiplies on the tensor cores with mma.sync m16n8k16 (fp32 accumulate), the tokens being the
// n = 8 side. The k order inside a 16-wide mma step is free as long as A and B agree, so each lane's
// 16-byte W vector and its 16-byte x vector feed the fragments directly, with no shuffles.
// x (at most 8 x K, hot in L1/L2) is read through the read-only path: a warp needs only the x
// slices of its own K share, so staging all of x in shared memory would not be reused within a
// block. The warps of a block (one block per 16 rows) split K and add up in shared memory.
// On sm_90 the launch uses programmatic dependent launch: the first weight loads are issued before
// waiting for the previous kernel of the stream, hiding part of the launch and ramp-up.
#include <cstdint>

#include "check.cuh"
#include "vec.cuh"

namespace turbine::cuda {

inline constexpr int kGemvMaxTokens = 8;

namespace detail {

inline constexpr int kGemvRows = 16;   // rows per block (the mma's m)
inline constexpr int kGemvUnroll = 4;  // 32-wide k chunks per warp and step (8 for k >= 4096)

template <class T>
static __device__ __forceinline__ void gemv_mma(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                                uint32_t b0, uint32_t b1) {
  if constexpr (std::same_as<T, __half>) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
  }
}

// Lane (g, c) = (lane / 4, lane % 4) holds, for a 32-wide k chunk at kk, W[row g][kk + 8c .. +8] (wa),
// W[row g + 8][same] (wb) and x[token g][same] (xv). Two mma steps consume them: the first takes
// elements 0..3 (A regs: row g k0-1, row g+8 k0-1, row g k2-3, row g+8 k2-3; B regs: k0-1, k2-3),
// the second elements 4..7.
template <class T>
static __device__ __forceinline__ void gemv_mma_chunk(float (&d)[4], const uint4& wa, const uint4& wb,
                                                      const uint4& xv) {
  gemv_mma<T>(d, wa.x, wb.x, wa.y, wb.y, xv.x, xv.y);
  gemv_mma<T>(d, wa.z, wb.z, wa.w, wb.w, xv.z, xv.w);
}

// w: [n, k], x: [kTokens, k], bias: [n] or null, y: [kTokens, n]. grid = ceil(n / 16), kWarps warps.
template <HalfElement T, int kTokens, int kWarps, int kUnroll>
__global__ static void __launch_bounds__(kWarps * 32)
    gemv_kernel(const T* __restrict__ w, const T* __restrict__ x, const T* __restrict__ bias, T* __restrict__ y, int n,
                int k) {
  pdl_launch_dependents();  // the next GEMV may start streaming its weights once all our blocks run
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int g = lane >> 2, c = lane & 3;
  const int row0 = blockIdx.x * kGemvRows;
  // Rows past n re-read row n - 1 (valid memory); their sums are dropped.
  const T* wa = w + static_cast<int64_t>(min(row0 + g, n - 1)) * k + 8 * c;
  const T* wb = w + static_cast<int64_t>(min(row0 + g + 8, n - 1)) * k + 8 * c;
  // Lanes past the last token re-read its row (the same sectors in the same instruction, so no extra
  // traffic) and zero it: no divergent branch around the loads.
  const bool has_x = g < kTokens;
  const T* xg = x + static_cast<int64_t>(min(g, kTokens - 1)) * k + 8 * c;
  const uint4 zero = make_uint4(0, 0, 0, 0);

  float d0[4] = {0.f, 0.f, 0.f, 0.f}, d1[4] = {0.f, 0.f, 0.f, 0.f};
  const int full = k / 32;  // chunks entirely inside k
  int c0 = warp * kUnroll;
  uint4 va[kUnroll], vb[kUnroll], vx[kUnroll];
  // The weights do not depend on the previous kernel: the first step's loads go out before the
  // programmatic-launch wait, so they overlap that kernel's tail. x and y only after it.
  bool have_w = c0 + kUnroll <= full;
  if (have_w) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      va[u] = vec::load_stream(wa + (c0 + u) * 32);
      vb[u] = vec::load_stream(wb + (c0 + u) * 32);
    }
  }
  pdl_wait();
  for (; c0 + kUnroll <= full; c0 += kWarps * kUnroll) {
    if (!have_w) {
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        va[u] = vec::load_stream(wa + (c0 + u) * 32);
        vb[u] = vec::load_stream(wb + (c0 + u) * 32);
      }
    }
    have_w = false;
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) vx[u] = vec::load_nc(xg + (c0 + u) * 32);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) vx[u] = has_x ? vx[u] : zero;
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) gemv_mma_chunk<T>((u & 1) ? d1 : d0, va[u], vb[u], vx[u]);
  }
  // At most one partial step per warp remains (k not a multiple of 32 * kUnroll * kWarps).
  if (c0 * 32 < k) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int kk = (c0 + u) * 32;
      const bool ok = kk + 8 * c < k;
      va[u] = ok ? vec::load_stream(wa + kk) : zero;
      vb[u] = ok ? vec::load_stream(wb + kk) : zero;
      vx[u] = ok ? vec::load_nc(xg + kk) : zero;
      if (!has_x) vx[u] = zero;
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) gemv_mma_chunk<T>((u & 1) ? d1 : d0, va[u], vb[u], vx[u]);
  }

  // d[j] of lane (g, c): row g + 8 * (j >= 2), token 2c + (j & 1). Sum over the warps' K shares.
  __shared__ float partial[kWarps][4][32];
#pragma unroll
  for (int j = 0; j < 4; ++j) partial[warp][j][lane] = d0[j] + d1[j];
  __syncthreads();
  for (int i = threadIdx.x; i < 4 * 32; i += kWarps * 32) {
    const int j = i >> 5, l = i & 31;
    float s = 0.f;
#pragma unroll
    for (int q = 0; q < kWarps; ++q) s += partial[q][j][l];
    const int row = row0 + (l >> 2) + (j >= 2 ? 8 : 0);
    const int tok = 2 * (l & 3) + (j & 1);
    if (tok < kTokens && row < n) {
      if (bias) s += to_float(bias[row]);
      y[static_cast<int64_t>(tok) * n + row] = from_float<T>(s);
    }
  }
}

template <HalfElement T, int kTokens, int kWarps, int kUnroll = kGemvUnroll>
void launch_gemv_kernel(const T* w, const T* x, const T* bias, T* y, int n, int k, cudaStream_t stream, bool pdl) {
  cudaLaunchAttribute attr{};
  attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(static_cast<unsigned>(ceil_div(n, kGemvRows)));
  cfg.blockDim = dim3(kWarps * 32);
  cfg.dynamicSmemBytes = 0;
  cfg.stream = stream;
  cfg.attrs = &attr;
  cfg.numAttrs = pdl ? 1 : 0;
  TURBINE_CUDA_CHECK(cudaLaunchKernelEx(&cfg, gemv_kernel<T, kTokens, kWarps, kUnroll>, w, x, bias, y, n, k));
}

template <HalfElement T, int kTokens>
void launch_gemv(const T* w, const T* x, const T* bias, T* y, int n, int k, cudaStream_t stream, bool pdl) {
  // Enough warps per block and loads per warp to keep bytes in flight, few enough that each warp has
  // whole steps to do. H100, bf16, 1 token: 8 warps x 8 chunks took 11.4 / 38.9 / 39.4 us for
  // Llama-3-8B o / gate / down against 12.7 / 39.8 / 40.6 for 8 x 4; 16 x 4 and 16 x 8 were in between.
  const int chunks = static_cast<int>(ceil_div(k, 32));
  if (chunks >= 8 * 8 * 2) {
    launch_gemv_kernel<T, kTokens, 8, 8>(w, x, bias, y, n, k, stream, pdl);
  } else if (chunks >= 8 * kGemvUnroll * 2) {
    launch_gemv_kernel<T, kTokens, 8>(w, x, bias, y, n, k, stream, pdl);
  } else if (chunks >= 4 * kGemvUnroll) {
    launch_gemv_kernel<T, kTokens, 4>(w, x, bias, y, n, k, stream, pdl);
  } else {
    launch_gemv_kernel<T, kTokens, 2>(w, x, bias, y, n, k, stream, pdl);
  }
}

}  // namespace detail

/// y = x * W^T (+ bias) for 1..8 tokens.
/// w: [n, k] T row-major, x: [tokens, k] T, bias: [n] T or null, y: [tokens, n] T.
/// k: a multiple of 8; pointers 16-byte aligned.
/// prefetch_weights (sm_90+): launch with programmatic dependent launch, so that the weight stream
/// starts while the previous kernel of the stream finishes. Then w must not be written by that
/// kernel (x, bias and y are touched only after it completes); pass false for freshly made weights.
template <HalfElement T>
void gemv(const T* w, const T* x, const T* bias, T* y, int tokens, int n, int k, cudaStream_t stream = nullptr,
          bool prefetch_weights = true) {
  check(n > 0 && k > 0, "gemv: bad sizes (n ", n, ", k ", k, ")");
  check(k % 8 == 0, "gemv: k = ", k, " is not supported (k must be a multiple of 8, for 16-byte loads)");
  check(aligned16(w) && aligned16(x), "gemv: w and x must be 16-byte aligned");
  const bool pdl = prefetch_weights && pdl_available();
  switch (tokens) {
    case 0:
      return;
    case 1:
      detail::launch_gemv<T, 1>(w, x, bias, y, n, k, stream, pdl);
      break;
    case 2:
      detail::launch_gemv<T, 2>(w, x, bias, y, n, k, stream, pdl);
      break;
    case 3:
      detail::launch_gemv<T, 3>(w, x, bias, y, n, k, stream, pdl);
      break;
    case 4:
      detail::launch_gemv<T, 4>(w, x, bias, y, n, k, stream, pdl);
      break;
    case 5:
      detail::launch_gemv<T, 5>(w, x, bias, y, n, k, stream, pdl);
      break;
    case 6:
      detail::launch_gemv<T, 6>(w, x, bias, y, n, k, stream, pdl);
      break;
    case 7:
      detail::launch_gemv<T, 7>(w, x, bias, y, n, k, stream, pdl);
      break;
    case 8:
      detail::launch_gemv<T, 8>(w, x, bias, y, n, k, stream, pdl);
      break;
    default:
      fail("gemv: ", tokens, " tokens is not supported (supported: 1 to ", kGemvMaxTokens, "; use the GEMM)");
  }
  TURBINE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace turbine::cuda
