#pragma once
// RMSNorm, plain and fused with the residual add that follows every attention and MLP block.
//
// The residual stream may be kept in fp32 (`float* residual`): decode adds 2 * layers deltas to it,
// and rounding the running sum to fp16/bf16 after every add (as Hugging Face does in half
// precision) lets it drift. A T residual is accepted too for bit-compatibility with such models.
//
// One block per token row; the row is read once into registers (8 elements per thread and vector),
// reduced, scaled and written once: one pass over the data.
#include <cstdint>

#include "check.cuh"
#include "vec.cuh"

namespace turbine::cuda {

namespace detail {

template <int kThreads>
static __device__ __forceinline__ float norm_block_sum(float v) {
  static_assert(kThreads % 32 == 0 && kThreads <= 1024);
  __shared__ float partial[kThreads / 32];
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  if constexpr (kThreads == 32) {
    return v;
  } else {
    if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = v;
    __syncthreads();
    float s = 0.f;
#pragma unroll
    for (int i = 0; i < kThreads / 32; ++i) s += partial[i];
    return s;
  }
}

// x: [tokens, dim] (R), delta: [tokens, dim] (D, only when kAdd), gamma: [dim], y: [tokens, dim].
// kAdd: x += delta is written back before the norm. y may alias x when R == T (each row is read
// completely before the block barrier and written after it).
template <class R, class D, class T, int kThreads, int kVecs, bool kAdd>
__global__ static void __launch_bounds__(kThreads)
    rms_norm_kernel(R* x, const D* delta, const T* gamma, T* y, int dim, float eps) {
  pdl_launch_dependents();  // a following GEMV may start streaming its weights
  const int64_t row = blockIdx.x;
  R* xr = x + row * dim;
  float v[kVecs][8];
  float ss = 0.f;
#pragma unroll
  for (int i = 0; i < kVecs; ++i) {
    const int idx = (i * kThreads + static_cast<int>(threadIdx.x)) * 8;
    if (idx < dim) {
      vec::load8(xr + idx, v[i]);
      if constexpr (kAdd) {
        float d[8];
        vec::load8(delta + row * dim + idx, d);
#pragma unroll
        for (int e = 0; e < 8; ++e) v[i][e] += d[e];
        vec::store8(xr + idx, v[i]);
      }
#pragma unroll
      for (int e = 0; e < 8; ++e) ss += v[i][e] * v[i][e];
    }
  }
  ss = norm_block_sum<kThreads>(ss);
  const float inv = rsqrtf(ss / static_cast<float>(dim) + eps);
#pragma unroll
  for (int i = 0; i < kVecs; ++i) {
    const int idx = (i * kThreads + static_cast<int>(threadIdx.x)) * 8;
    if (idx < dim) {
      float g[8];
      vec::load8(gamma + idx, g);
#pragma unroll
      for (int e = 0; e < 8; ++e) v[i][e] = (v[i][e] * inv) * g[e];
      vec::store8(y + row * dim + idx, v[i]);
    }
  }
}

inline constexpr int kNormMaxDim = 16384;

template <class R, class D, class T, bool kAdd>
inline void launch_rms_norm(const char* what, R* x, const D* delta, const T* gamma, T* y, int tokens, int dim,
                            float eps, cudaStream_t stream) {
  check(tokens >= 0, what, ": negative token count ", tokens);
  check(dim > 0 && dim % 8 == 0 && dim <= kNormMaxDim, what, ": hidden size ", dim,
        " is not supported (supported: multiples of 8 up to ", kNormMaxDim, ")");
  check(aligned16(x) && aligned16(gamma) && aligned16(y) && (!kAdd || aligned16(delta)), what,
        ": pointers must be 16-byte aligned");
  if (tokens == 0) return;
  const dim3 grid(static_cast<unsigned>(tokens));
  // (threads, vectors per thread) keeps each thread's row slice at <= 32 fp32 registers.
  const int nvec = dim / 8;
  if (nvec <= 128) {
    rms_norm_kernel<R, D, T, 128, 1, kAdd><<<grid, 128, 0, stream>>>(x, delta, gamma, y, dim, eps);
  } else if (nvec <= 256) {
    rms_norm_kernel<R, D, T, 128, 2, kAdd><<<grid, 128, 0, stream>>>(x, delta, gamma, y, dim, eps);
  } else if (nvec <= 512) {
    rms_norm_kernel<R, D, T, 128, 4, kAdd><<<grid, 128, 0, stream>>>(x, delta, gamma, y, dim, eps);
  } else if (nvec <= 1024) {
    rms_norm_kernel<R, D, T, 256, 4, kAdd><<<grid, 256, 0, stream>>>(x, delta, gamma, y, dim, eps);
  } else {
    rms_norm_kernel<R, D, T, 512, 4, kAdd><<<grid, 512, 0, stream>>>(x, delta, gamma, y, dim, eps);
  }
  TURBINE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace detail

/// y = x / sqrt(mean(x^2) + eps) * gamma per row.
/// x: [tokens, dim] (float residual stream or T), gamma: [dim], y: [tokens, dim]. y may alias x when
/// X is T. dim: a multiple of 8 up to 16384; pointers 16-byte aligned.
template <VecElement X, HalfElement T>
void rms_norm(const X* x, const T* gamma, T* y, int tokens, int dim, float eps, cudaStream_t stream = nullptr) {
  detail::launch_rms_norm<X, T, T, false>("rms_norm", const_cast<X*>(x), static_cast<const T*>(nullptr), gamma, y,
                                          tokens, dim, eps, stream);
}

/// residual += delta, then y = rms_norm(residual) * gamma, in one pass.
/// residual: [tokens, dim] (float, or T), updated in place; delta: [tokens, dim]; y: [tokens, dim].
template <VecElement R, HalfElement T>
void add_rms_norm(R* residual, const T* delta, const T* gamma, T* y, int tokens, int dim, float eps,
                  cudaStream_t stream = nullptr) {
  detail::launch_rms_norm<R, T, T, true>("add_rms_norm", residual, delta, gamma, y, tokens, dim, eps, stream);
}

}  // namespace turbine::cuda
