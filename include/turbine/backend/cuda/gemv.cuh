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
// The kernel is a template over where x comes from and where the sums go (policies, below), so that
// gemv_fused.cuh can fold the decode step's norms, activation and rotary/KV-cache store into it.
#include <atomic>
#include <cstdint>
#include <type_traits>

#include "bulk_copy.cuh"
#include "check.cuh"
#include "vec.cuh"

namespace turbine::cuda {

inline constexpr int kGemvMaxTokens = 8;

namespace detail {

inline constexpr int kGemvRows = 16;   // rows per block (the mma's m)
inline constexpr int kGemvUnroll = 4;  // 32-wide k chunks per warp and step (8 for some k, see launch_gemv)

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

// What the kernel multiplies W by, as a policy: lane(tok, k, off, smem) gives a functor that returns
// the 8 x elements [kk, kk + 8) of token `tok` (plus the lane's offset `off`) as one 16-byte vector.
// prologue() runs once per block after the programmatic-launch wait (sources that stage x in
// dynamic shared memory fill it there; smem_bytes says how much they need).
/// x as stored: [tokens, k] T.
template <HalfElement T>
struct GemvX {
  const T* x;
  static size_t smem_bytes(int, int) { return 0; }
  template <int kThreads>
  __device__ __forceinline__ void prologue(T*, int, int) const {}
  struct Lane {
    const T* p;
    __device__ __forceinline__ uint4 operator()(int kk) const { return vec::load_nc(p + kk); }
  };
  __device__ __forceinline__ Lane lane(int tok, int k, int off, const T*) const {
    return {x + static_cast<int64_t>(tok) * k + off};
  }
};

/// x as stored, copied whole into the block's shared memory by the copy engine (sm_90 and later
/// only: the host picks it there) right after the programmatic-launch wait. Why: the weights' loads
/// go out before the wait, so an x load issued after it from the lanes queues behind a whole ring
/// of them and lands with the last of them; until it does, no chunk can be multiplied.
template <HalfElement T>
struct GemvXBulk {
  const T* x;
  __host__ __device__ static constexpr size_t x_bytes(int tokens, int k) {
    return (size_t(tokens) * k * sizeof(T) + 15) / 16 * 16;
  }
  static size_t smem_bytes(int tokens, int k) { return x_bytes(tokens, k) + 16; }  // x, then the mbarrier
  // start(): one thread asks for the copy (right after the wait, before the kernel's later weight
  // loads, so that x's request is not behind them); prologue(): everyone waits for it.
  __device__ __forceinline__ uint64_t* barrier(T* xs, int k, int tokens) const {
    return reinterpret_cast<uint64_t*>(reinterpret_cast<char*>(xs) + x_bytes(tokens, k));
  }
  __device__ __forceinline__ void start(T* xs, int k, int tokens) const {
    if (threadIdx.x != 0) return;
    const uint32_t bytes = static_cast<uint32_t>(size_t(tokens) * k * sizeof(T));
    uint64_t* bar = barrier(xs, k, tokens);
    bulk::barrier_init(bar, 1);
    bulk::fence_init();
    bulk::arrive_expect_tx(bar, bytes);
    bulk::copy_g2s(xs, x, bytes, bar);
  }
  template <int kThreads>
  __device__ __forceinline__ void prologue(T* xs, int k, int tokens) const {
    __syncthreads();  // the barrier's initialization, before anyone waits on it
    bulk::wait(barrier(xs, k, tokens), 0);
  }
  struct Lane {
    const T* p;
    __device__ __forceinline__ uint4 operator()(int kk) const { return *reinterpret_cast<const uint4*>(p + kk); }
  };
  __device__ __forceinline__ Lane lane(int tok, int k, int off, const T* staged) const {
    return {staged + static_cast<int64_t>(tok) * k + off};
  }
};

// Runs an x source's start(), for the sources that have one: after the programmatic-launch wait and
// before prologue(), with the kernel's post-wait loads (if any) between the two.
template <class X, class T>
__device__ __forceinline__ void gemv_x_start(const X& xs, T* staged, int k, int tokens) {
  if constexpr (requires { xs.start(staged, k, tokens); }) xs.start(staged, k, tokens);
}

// Where a block's 16 rows are and what happens to their sums, as a policy: rows(block, g, n, ra, rb)
// names the rows that mma rows g and g + 8 compute (always valid memory: rows past n re-read row
// n - 1), store(block, g, tok, sa, sb, n) takes their fp32 sums for one token.
/// y[tok, row] = sum (+ bias[row]) in Y (T, or float for logits), rows 16 * block + [0, 16).
template <class Y, HalfElement T>
struct GemvStore {
  Y* y;
  const T* bias;
  __device__ __forceinline__ void rows(int blk, int g, int n, int& ra, int& rb) const {
    ra = min(blk * kGemvRows + g, n - 1);
    rb = min(blk * kGemvRows + g + 8, n - 1);
  }
  __device__ __forceinline__ void store(int blk, int g, int tok, float sa, float sb, int n) const {
    const int r = blk * kGemvRows + g;
    Y* yt = y + static_cast<int64_t>(tok) * n;
    if (r < n) yt[r] = from_float<Y>(bias ? sa + to_float(bias[r]) : sa);
    if (r + 8 < n) yt[r + 8] = from_float<Y>(bias ? sb + to_float(bias[r + 8]) : sb);
  }
};

// Hands one thread's two sums to the output policy. Called by every lane of a warp together (tok
// differs by lane, tokens past the count included), so a policy with kWarpStore may use warp
// shuffles across the 8 lanes g = 0..7 that hold one token (GemvResidualStats reduces a tile's sum
// of squares that way); the others see only their valid tokens.
template <class E>
static __device__ __forceinline__ void gemv_epilogue(const E& ep, int blk, int g, int tok, int tokens, float sa,
                                                     float sb, int n) {
  if constexpr (requires { E::kWarpStore; }) ep.warp_store(blk, g, tok, tokens, sa, sb, n);
  else if (tok < tokens) ep.store(blk, g, tok, sa, sb, n);
}

// The end of a GEMV block: d[j] of lane (g, c) is row g + 8 * (j >= 2), token 2c + (j & 1). Sums
// over the warps' K shares; a thread then owns rows g and g + 8 of one token, so an epilogue can
// pair them (rotary halves). Shared by gemv_kernel and the 4-bit gemv_w4_kernel.
template <int kWarps, class E>
static __device__ __forceinline__ void gemv_reduce_store(const float (&d0)[4], const float (&d1)[4], int tokens, int n,
                                                         const E& ep) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __shared__ float partial[kWarps][4][32];
#pragma unroll
  for (int j = 0; j < 4; ++j) partial[warp][j][lane] = d0[j] + d1[j];
  __syncthreads();
  for (int i = threadIdx.x; i < 2 * 32; i += kWarps * 32) {
    const int j = i >> 5, l = i & 31;
    float sa = 0.f, sb = 0.f;
#pragma unroll
    for (int q = 0; q < kWarps; ++q) {
      sa += partial[q][j][l];
      sb += partial[q][j + 2][l];
    }
    gemv_epilogue(ep, static_cast<int>(blockIdx.x), l >> 2, 2 * (l & 3) + j, tokens, sa, sb, n);
  }
}

// w: [n, k]; x and the output as their policies say; 1 to 8 tokens. grid = ceil(n / 16), kWarps
// warps. The token count is a run-time value: the mma's n = 8 side computes 8 columns whatever it
// is, so a compile-time count would only multiply the instantiations (8x the compile time).
template <HalfElement T, int kWarps, int kUnroll, class X, class E>
__global__ static void __launch_bounds__(kWarps * 32)
    gemv_kernel(const T* __restrict__ w, int n, int k, int tokens, const X xs, const E ep) {
  pdl_launch_dependents();  // the next GEMV may start streaming its weights once all our blocks run
  extern __shared__ uint4 gemv_staged[];  // the x source's staging area (dynamic, often empty)
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int g = lane >> 2, c = lane & 3;
  int ra, rb;
  ep.rows(static_cast<int>(blockIdx.x), g, n, ra, rb);
  const T* wa = w + static_cast<int64_t>(ra) * k + 8 * c;
  const T* wb = w + static_cast<int64_t>(rb) * k + 8 * c;
  // Lanes past the last token feed zeros (the mma's n = 8 side is padded).
  const bool has_x = g < tokens;
  const uint4 zero = make_uint4(0, 0, 0, 0);

  float d0[4] = {0.f, 0.f, 0.f, 0.f}, d1[4] = {0.f, 0.f, 0.f, 0.f};
  uint4 va[kUnroll], vb[kUnroll], vx[kUnroll];
  // One step: kUnroll 32-wide chunks per warp, c0 .. c0 + kUnroll - 1; chunks past k read nothing.
  auto load_w = [&](int c0) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int kk = (c0 + u) * 32;
      const bool ok = kk + 8 * c < k;
      va[u] = ok ? vec::load_stream(wa + kk) : zero;
      vb[u] = ok ? vec::load_stream(wb + kk) : zero;
    }
  };
  // The weights do not depend on the previous kernel: the first step's loads go out before the
  // programmatic-launch wait, so they overlap that kernel's tail (the launcher picks steps that
  // cover all of k when k is small, so such a GEMV has no weight load left after the wait). x and
  // the outputs only after it.
  const int first = warp * kUnroll;
  if (first * 32 < k) load_w(first);
  pdl_wait();
  T* const staged = reinterpret_cast<T*>(gemv_staged);
  gemv_x_start(xs, staged, k, tokens);
  xs.template prologue<kWarps * 32>(staged, k, tokens);
  const auto xl = xs.lane(min(g, tokens - 1), k, 8 * c, staged);
  for (int c0 = first; c0 * 32 < k; c0 += kWarps * kUnroll) {
    if (c0 != first) load_w(c0);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int kk = (c0 + u) * 32;
      vx[u] = has_x && kk + 8 * c < k ? xl(kk) : zero;
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) gemv_mma_chunk<T>((u & 1) ? d1 : d0, va[u], vb[u], vx[u]);
  }

  gemv_reduce_store<kWarps>(d0, d1, tokens, n, ep);
}

template <HalfElement T, int kWarps, int kUnroll, class X, class E>
void launch_gemv_kernel(const T* w, int n, int k, int tokens, const X& x, const E& e, cudaStream_t stream, bool pdl) {
  auto kernel = gemv_kernel<T, kWarps, kUnroll, X, E>;
  const size_t smem = X::smem_bytes(tokens, k);
  if (smem > 48 * 1024) {
    // One instantiation serves every k and token count: raise its limit whenever a launch needs
    // more than it was raised to on this device (the opt-in limit less the kernel's static shared
    // memory is the most it can get).
    static std::atomic<size_t> raised[64];
    int dev = 0;
    TURBINE_CUDA_CHECK(cudaGetDevice(&dev));
    if (smem > raised[dev & 63].load(std::memory_order_acquire)) {
      int limit = 0;
      cudaFuncAttributes attr{};
      TURBINE_CUDA_CHECK(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
      TURBINE_CUDA_CHECK(cudaFuncGetAttributes(&attr, kernel));
      const size_t most = size_t(limit) - attr.sharedSizeBytes;
      check(smem <= most, "gemv: ", tokens, " tokens of k = ", k, " need ", smem, " bytes of shared memory; this GPU allows ",
            most, " (decode fewer sequences at once)");
      TURBINE_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
      raised[dev & 63].store(smem, std::memory_order_release);
    }
  }
  launch_kernel(kernel, dim3(static_cast<unsigned>(ceil_div(n, kGemvRows))), dim3(kWarps * 32), smem, stream, pdl, w,
                n, k, tokens, x, e);
}

/// The plain GEMV in one launch configuration (the kernel benchmark compares configurations).
template <HalfElement T, int kWarps, int kUnroll = kGemvUnroll>
void launch_gemv_kernel(const T* w, const T* x, const T* bias, T* y, int tokens, int n, int k, cudaStream_t stream,
                        bool pdl) {
  launch_gemv_kernel<T, kWarps, kUnroll>(w, n, k, tokens, GemvX<T>{x}, GemvStore<T, T>{y, bias}, stream, pdl);
}

template <HalfElement T, class X, class E>
void launch_gemv(const T* w, int n, int k, int tokens, const X& x, const E& e, cudaStream_t stream, bool pdl) {
  check(tokens >= 1 && tokens <= kGemvMaxTokens, "gemv: ", tokens, " tokens is not supported (supported: 1 to ",
        kGemvMaxTokens, "; use the GEMM)");
  // Large k: enough warps per block and loads per warp to keep bytes in flight, few enough that each
  // warp has whole steps to do. H100, bf16, 1 token: 8 warps x 8 chunks took 11.4 / 38.9 / 39.4 us
  // for Llama-3-8B o / gate / down against 12.7 / 39.8 / 40.6 for 8 x 4; 16 x 4 and 16 x 8 were in
  // between. Small k (<= 2048, the small models' decode): the smallest configuration whose first
  // step covers all of k, so every weight load is issued before the programmatic-launch wait.
  const int chunks = static_cast<int>(ceil_div(k, 32));
  if (chunks >= 8 * 8 * 2) {
    launch_gemv_kernel<T, 8, 8>(w, n, k, tokens, x, e, stream, pdl);
  } else if (chunks > 8 * 8) {
    launch_gemv_kernel<T, 8, kGemvUnroll>(w, n, k, tokens, x, e, stream, pdl);
  } else if (chunks > 8 * kGemvUnroll) {
    launch_gemv_kernel<T, 8, 8>(w, n, k, tokens, x, e, stream, pdl);
  } else if (chunks > 4 * kGemvUnroll) {
    launch_gemv_kernel<T, 8, kGemvUnroll>(w, n, k, tokens, x, e, stream, pdl);
  } else if (chunks > 2 * kGemvUnroll) {
    launch_gemv_kernel<T, 4, kGemvUnroll>(w, n, k, tokens, x, e, stream, pdl);
  } else {
    launch_gemv_kernel<T, 2, kGemvUnroll>(w, n, k, tokens, x, e, stream, pdl);
  }
}

}  // namespace detail

/// y = x * W^T (+ bias) for 1..8 tokens.
/// w: [n, k] T row-major, x: [tokens, k] T, bias: [n] T or null, y: [tokens, n] T (or float: logits).
/// k: a multiple of 8; pointers 16-byte aligned.
/// prefetch_weights (sm_90+): launch with programmatic dependent launch, so that the weight stream
/// starts while the previous kernel of the stream finishes. Then w must not be written by that
/// kernel (x, bias and y are touched only after it completes); pass false for freshly made weights.
template <HalfElement T, VecElement Y>
void gemv(const T* w, const T* x, const T* bias, Y* y, int tokens, int n, int k, cudaStream_t stream = nullptr,
          bool prefetch_weights = true) {
  check(n > 0 && k > 0, "gemv: bad sizes (n ", n, ", k ", k, ")");
  check(k % 8 == 0, "gemv: k = ", k, " is not supported (k must be a multiple of 8, for 16-byte loads)");
  check(aligned16(w) && aligned16(x), "gemv: w and x must be 16-byte aligned");
  if (tokens == 0) return;
  const bool pdl = prefetch_weights && pdl_available();
  detail::launch_gemv<T>(w, n, k, tokens, detail::GemvX<T>{x}, detail::GemvStore<Y, T>{y, bias}, stream, pdl);
  TURBINE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace turbine::cuda
