#pragma once
// W4A16 GEMM for 9 tokens and up (prefill chunks, batched decode): y[t, n] = sum_k x[t, k] W[n, k]
// (+ bias[n]), W in gemv_w4.cuh's 4-bit layout (W4Matrix), dequantized in registers straight into
// the mma fragments (Marlin's idea; our own code and our own, unchanged, weight layout).
//
// Why this shape. At 16-64 tokens the product is bound by reading W: 4-bit W is ~3.6x fewer bytes
// than fp16, so W is read exactly once per token tile, with 16-byte loads, and nothing is written
// back but y. The weights are the mma's A operand (16 rows of W), the tokens its n = 8 side, so a
// token tile of 16 costs two mma columns and no padding. x is small and reused by every warp, so it
// goes through a 3-stage cp.async pipeline in shared memory; the weights go straight from global
// memory to registers (each 16-byte vector is used by exactly one lane: staging it in shared memory
// would only add a copy), the next step's loads in flight while this step computes.
//
// mma.sync.m16n8k16.row.col f32.f16.f16.f32 fragments (PTX ISA, "Matrix Fragments for mma.m16n8k16"),
// lane = 4 g + t (g = lane / 4 in 0..7, t = lane % 4), each register two fp16, lower k / column in
// the low half:
//   A (16 x 16, rows x k): a0 = (row g,     k 2t, 2t+1)   a1 = (row g + 8, k 2t, 2t+1)
//                          a2 = (row g,     k 2t+8, 2t+9) a3 = (row g + 8, k 2t+8, 2t+9)
//   B (16 x 8, k x col):   b0 = (k 2t, 2t+1, col g)       b1 = (k 2t+8, 2t+9, col g)
//   C (16 x 8, f32):       c0 = (row g, col 2t)  c1 = (row g, col 2t+1)
//                          c2 = (row g + 8, col 2t)  c3 = (row g + 8, col 2t+1)
// Only the products a(row, k) * b(k, col) summed over k matter, so which physical input a logical k
// stands for is free, provided that A of lane (g, t) and B of lane (g', t) agree for every g, g'.
// Lane t therefore takes the logical k of an mma step from its own weight word: word j of the lane's
// 16-byte vector (inputs 8j .. 8j+7 of the lane's 32) dequantizes (w4_dequant8) into four half2 =
// input pairs (0,1) (2,3) (4,5) (6,7); the first mma uses pairs 0 and 1 as (a0, a2) for row g and
// (a1, a3) for row g + 8, the second mma pairs 2 and 3; the lane's B registers are x[token][the same
// 8 inputs] = one 16-byte shared-memory vector (b0, b1 of the first mma = its halves 0-3, of the
// second = halves 4-7). This is exactly the GEMV's mapping (gemv_mma_chunk), which is tested.
//
// Tiles: a block is 8 warps x 16 rows = 128 rows of W and a tile of 16, 32 or 64 tokens (kTN = 2, 4
// or 8 mma columns); a warp owns 16 rows and all the block's tokens, so a dequantized weight feeds
// 2 kTN mmas. A step is 256 inputs: lane t loads, for rows g and g + 8, the 16 bytes at inputs
// 128 c + 32 t (c = 0, 1) and their group's {scale, 1024 + zero}. When n / 128 x token tiles cannot
// fill the GPU (Llama's 4096-row matrices give 32 blocks), k is split over blocks; each writes its
// fp32 tile to a workspace and the last block of a tile to arrive (an atomic counter that it resets)
// adds the partial tiles in a fixed order (deterministic) and stores y.
//
// Shared memory x tile: [stage][token][256 inputs + 16 pad] fp16. The reads (lanes (g, t) of a
// quarter warp read 16 bytes of rows g, g + 1 at inputs 32 t + 8 j) would hit each bank twice
// (lanes t and t + 2 are 64 bytes apart); swapping 16-byte units 2i and 2i+1 in the upper half of
// every 128-input chunk (unit u ^ bit 3 of u) and a 32-byte row pad make them conflict-free.
//
// gemm_w4 runs the second, staged kernel (gemm_w4s_kernel, after the first one, which stays for
// comparison in bench_cuda_kernels) where the code has no wgmma: the same fragments, but warps
// owning several 16-row tiles (x fragments reused across them), weights and params staged through
// a deeper cp.async ring, and split-k sums added by a separate kernel over the whole GPU. Its own
// comment says why. Up to 16 tokens it runs the GEMV's two-column stream kernel where W's tiles fit
// one wave and k is not long (kW4LongK); otherwise, at any count, on sm_90a the wgmma kernel of
// gemm_w4_wgmma.cuh in its bulk-copy form (the same grid rule, workspace and reduce kernel).
// gemm_w4's own comment gives the measurements.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>

#include "check.cuh"
#include "cp_async.cuh"
#include "device_buffer.cuh"
#include "gemm_w4_wgmma.cuh"
#include "gemv_w4.cuh"
#include "vec.cuh"

namespace turbine::cuda {

/// Fewest tokens gemm_w4 is meant for (below, gemv_w4 is faster); it computes any count correctly.
inline constexpr int kGemmW4MinTokens = kGemvMaxTokens + 1;

namespace detail {

inline constexpr int kW4gThreads = 256;  // 8 warps
inline constexpr int kW4gRows = 128;     // rows of W per block: 16 per warp
inline constexpr int kW4gStepK = 256;    // inputs per pipeline step: two 128-input chunks
inline constexpr int kW4gStages = 3;     // x pipeline depth
inline constexpr int kW4gXStride = kW4gStepK + 16;  // halves per token row of a stage (the pad: see above)
inline constexpr int kW4gMaxBlocksPerSm = 8;         // 256-thread blocks (2048 threads per SM)
// Split-k workspace per SM, in float4: token columns (kTN) x resident blocks is at most 16 on sm_80 /
// sm_90 (shared memory bounds the 32- and 64-token tiles, threads the 16-token one).
inline constexpr size_t kW4gPartialsPerSm = size_t(16) * kW4gThreads;

template <int kTN>
constexpr size_t w4g_smem_bytes() {
  return size_t(kW4gStages) * (8 * kTN) * kW4gXStride * sizeof(__half);
}

// Where 16-byte unit u (inputs 8u .. 8u+7 of a step) of a token row lives in shared memory.
static __device__ __forceinline__ int w4g_swizzle(int u) { return u ^ ((u >> 3) & 1); }

// Resident blocks per SM asked of the register allocator, as many as fit without spills (ptxas,
// CUDA 13, sm_90a: 99 / 124 / 166 registers for kTN 2 / 4 / 8; asking for 3 / 3 / 2 spills).
template <int kTN>
inline constexpr int kW4gMinBlocks = kTN == 8 ? 1 : 2;

template <int kTN>
__global__ static void __launch_bounds__(kW4gThreads, kW4gMinBlocks<kTN>)
    gemm_w4_kernel(const uint32_t* __restrict__ qw, const __half2* __restrict__ params, const __half* __restrict__ x,
                   const __half* __restrict__ bias, __half* __restrict__ y, int n, int k, int group, int tokens,
                   int k_split, float4* __restrict__ partials, unsigned* __restrict__ counters) {
  constexpr int kBT = 8 * kTN;  // tokens per block
  extern __shared__ __align__(16) uint4 w4g_dyn_smem[];
  __half* xs = reinterpret_cast<__half*>(w4g_dyn_smem);  // [kW4gStages][kBT][kW4gXStride]
  __shared__ unsigned last_block;

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int row0 = blockIdx.x * kW4gRows + warp * 16;
  const int tok0 = blockIdx.y * kBT;
  const int kbeg = blockIdx.z * k_split, kend = min(k, kbeg + k_split);
  const int steps = (kend - kbeg + kW4gStepK - 1) / kW4gStepK;
  const int words = k / 8, groups = k / group;
  // Rows past n re-read row n - 1 (valid memory; their sums are never stored).
  const uint32_t* wa = qw + static_cast<int64_t>(min(row0 + g, n - 1)) * words;
  const uint32_t* wb = qw + static_cast<int64_t>(min(row0 + g + 8, n - 1)) * words;
  const __half2* pa = params + static_cast<int64_t>(min(row0 + g, n - 1)) * groups;
  const __half2* pb = params + static_cast<int64_t>(min(row0 + g + 8, n - 1)) * groups;

  // x[tok0 .. tok0 + kBT)[step's 256 inputs] -> stage: kBT * 32 units, consecutive threads take
  // consecutive units of a token row (512 contiguous bytes).
  auto load_x = [&](int stage, int step) {
    const int kb = kbeg + step * kW4gStepK;
    __half* dst = xs + stage * (kBT * kW4gXStride);
    static_assert(kBT * (kW4gStepK / 8) == kTN * kW4gThreads, "one unit per thread and token column");
#pragma unroll
    for (int q = 0; q < kTN; ++q) {
      const int i = q * kW4gThreads + threadIdx.x;
      const int r = i / (kW4gStepK / 8), u = i % (kW4gStepK / 8);
      const int kk = kb + 8 * u;
      const bool ok = tok0 + r < tokens && kk < kend;  // kend is a multiple of 32: units are all in or all out
      const __half* src = ok ? x + static_cast<int64_t>(tok0 + r) * k + kk : x;
      cp_async16(smem_u32(dst + r * kW4gXStride + 8 * w4g_swizzle(u)), src, ok);
    }
  };
  // The lane's weights of one step: rows g (wv[c][0]) and g + 8 (wv[c][1]), inputs 128 c + 32 t.
  uint4 wv[2][2];
  __half2 sv[2][2];
  auto load_w = [&](int step) {
#pragma unroll
    for (int c = 0; c < 2; ++c) {
      const int kk = kbeg + step * kW4gStepK + 128 * c + 32 * t;
      const bool ok = kk < kend;  // 32 inputs, all in one group (group >= 32, k a multiple of the group)
      wv[c][0] = ok ? vec::load_stream(wa + kk / 8) : make_uint4(0, 0, 0, 0);
      wv[c][1] = ok ? vec::load_stream(wb + kk / 8) : make_uint4(0, 0, 0, 0);
      sv[c][0] = ok ? pa[kk / group] : __half2{};
      sv[c][1] = ok ? pb[kk / group] : __half2{};
    }
  };

  float acc[kTN][4];
#pragma unroll
  for (int j = 0; j < kTN; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;

#pragma unroll
  for (int s = 0; s < kW4gStages - 1; ++s) {
    if (s < steps) load_x(s, s);
    cp_async_commit();  // always: the wait below counts groups
  }
  load_w(0);
  for (int i = 0; i < steps; ++i) {
    // Group i (this step's x) is in; the barrier also says every warp is done with step i - 1's
    // stage, which the copy below overwrites.
    cp_async_wait<kW4gStages - 2>();
    __syncthreads();
    if (i + kW4gStages - 1 < steps) load_x((i + kW4gStages - 1) % kW4gStages, i + kW4gStages - 1);
    cp_async_commit();
    uint4 cw[2][2];
    __half2 cs[2][2];
#pragma unroll
    for (int c = 0; c < 2; ++c) {
      cw[c][0] = wv[c][0], cw[c][1] = wv[c][1];
      cs[c][0] = sv[c][0], cs[c][1] = sv[c][1];
    }
    if (i + 1 < steps) load_w(i + 1);  // in flight during this step's math
    const __half* xt = xs + (i % kW4gStages) * (kBT * kW4gXStride) + g * kW4gXStride;
#pragma unroll
    for (int c = 0; c < 2; ++c) {
      const uint32_t* a = reinterpret_cast<const uint32_t*>(&cw[c][0]);
      const uint32_t* b = reinterpret_cast<const uint32_t*>(&cw[c][1]);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const uint4 qa = w4_dequant8(a[j], cs[c][0]);  // row g, inputs 128c + 32t + 8j + (0..7)
        const uint4 qb = w4_dequant8(b[j], cs[c][1]);  // row g + 8, the same inputs
        const int unit = w4g_swizzle(16 * c + 4 * t + j);
#pragma unroll
        for (int tn = 0; tn < kTN; ++tn) {
          // x[token tok0 + 8 tn + g][the same 8 inputs]
          const uint4 xv = *reinterpret_cast<const uint4*>(xt + tn * 8 * kW4gXStride + 8 * unit);
          gemv_mma<__half>(acc[tn], qa.x, qb.x, qa.y, qb.y, xv.x, xv.y);
          gemv_mma<__half>(acc[tn], qa.z, qb.z, qa.w, qb.w, xv.z, xv.w);
        }
      }
    }
  }

  if (gridDim.z > 1) {
    // Split k: partial tiles [tile][split][tn][thread] float4 (coalesced), the last block adds them.
    const unsigned tile = blockIdx.y * gridDim.x + blockIdx.x;
    float4* mine = partials + (static_cast<size_t>(tile) * gridDim.z + blockIdx.z) * (kTN * kW4gThreads) + threadIdx.x;
#pragma unroll
    for (int tn = 0; tn < kTN; ++tn)
      __stcg(mine + tn * kW4gThreads, make_float4(acc[tn][0], acc[tn][1], acc[tn][2], acc[tn][3]));
    __threadfence();  // this block's partials are visible before its arrival is counted
    __syncthreads();
    if (threadIdx.x == 0) last_block = atomicAdd(counters + tile, 1u) == gridDim.z - 1;
    __syncthreads();
    if (!last_block) return;
    __threadfence();  // the other blocks' partials are read after their arrivals were seen
    const float4* all = partials + static_cast<size_t>(tile) * gridDim.z * (kTN * kW4gThreads) + threadIdx.x;
#pragma unroll
    for (int tn = 0; tn < kTN; ++tn) acc[tn][0] = acc[tn][1] = acc[tn][2] = acc[tn][3] = 0.f;
    for (unsigned s = 0; s < gridDim.z; ++s) {  // split order, not arrival order: deterministic
#pragma unroll
      for (int tn = 0; tn < kTN; ++tn) {
        const float4 v = __ldcg(all + (s * kTN + tn) * kW4gThreads);
        acc[tn][0] += v.x, acc[tn][1] += v.y, acc[tn][2] += v.z, acc[tn][3] += v.w;
      }
    }
    if (threadIdx.x == 0) counters[tile] = 0;  // ready for the next call (stream order)
  }

  // acc[tn][2h + e] = row row0 + g + 8h, token tok0 + 8tn + 2t + e.
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int row = row0 + g + 8 * h;
    if (row >= n) continue;
    const float b = bias ? __half2float(bias[row]) : 0.f;
#pragma unroll
    for (int tn = 0; tn < kTN; ++tn) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int tok = tok0 + 8 * tn + 2 * t + e;
        if (tok < tokens) y[static_cast<int64_t>(tok) * n + row] = __float2half_rn(acc[tn][2 * h + e] + b);
      }
    }
  }
}

// The permuted x of the wgmma kernel's bulk-copy form (gemm_w4_wgmma.cuh, w4w_permute_x_kernel):
// 8 MB holds 256 tokens at k 16384; more tokens go through in slabs.
inline constexpr size_t kW4wXPermBytes = size_t(8) << 20;

// A gemm_w4 workspace as the kernels see it: fp32 partial tiles and one arrival counter per tile
// for a k split (the counters reset themselves), and the bulk-copy form's permuted x.
struct W4gWorkspace {
  float4* partials = nullptr;
  unsigned* counters = nullptr;
  size_t partial_float4s = 0;
  int counter_count = 0;
  int sms = 0;
  __half* x_perm = nullptr;  // kW4wXPermBytes
};

// Sizes a workspace for the current device and allocates it with `alloc(bytes)`, counters zeroed.
// Splitting never makes more blocks than fit at once (sms x blocks per SM), so neither more tiles
// than that nor more partial tiles (the launcher still clamps to these sizes).
template <class Alloc>
W4gWorkspace make_w4g_workspace(Alloc&& alloc) {
  W4gWorkspace w;
  int dev = 0;
  TURBINE_CUDA_CHECK(cudaGetDevice(&dev));
  TURBINE_CUDA_CHECK(cudaDeviceGetAttribute(&w.sms, cudaDevAttrMultiProcessorCount, dev));
  w.counter_count = w.sms * kW4gMaxBlocksPerSm;
  w.partial_float4s = size_t(w.sms) * kW4gPartialsPerSm;
  w.partials = static_cast<float4*>(alloc(w.partial_float4s * sizeof(float4)));
  w.counters = static_cast<unsigned*>(alloc(size_t(w.counter_count) * sizeof(unsigned)));
  TURBINE_CUDA_CHECK(cudaMemset(w.counters, 0, size_t(w.counter_count) * sizeof(unsigned)));
  w.x_perm = static_cast<__half*>(alloc(kW4wXPermBytes));
  return w;
}

// The shared workspace of one device, for callers that bring none: made once (never grown, so CUDA
// graphs that captured a gemm_w4 keep valid pointers) and kept for the process. Calls that use it
// must not overlap in time.
inline const W4gWorkspace& w4g_workspace() {
  static std::mutex mu;
  static W4gWorkspace per_device[64];
  int dev = 0;
  TURBINE_CUDA_CHECK(cudaGetDevice(&dev));
  check(dev >= 0 && dev < 64, "gemm_w4: device ", dev, " is not supported (0 to 63)");
  std::lock_guard<std::mutex> lock(mu);
  W4gWorkspace& w = per_device[dev];
  if (!w.partials) {
    w = make_w4g_workspace([](size_t bytes) {
      void* p = nullptr;
      TURBINE_CUDA_CHECK(cudaMalloc(&p, bytes));
      return p;
    });
  }
  return w;
}

// The once-per-device set-up of a W4 GEMM kernel (shared-memory limit, resident blocks per SM,
// cached per device; each kernel its own statics): what a CUDA graph capture must not be the first
// to do.
template <auto kKernel>
int w4_kernel_blocks_per_sm(int threads, size_t smem) {
  static std::atomic<uint64_t> raised{0};
  static std::atomic<int> occupancy[64] = {};
  raise_dynamic_smem(raised, kKernel, smem);
  int dev = 0;
  TURBINE_CUDA_CHECK(cudaGetDevice(&dev));
  int per_sm = occupancy[dev & 63].load(std::memory_order_relaxed);
  if (per_sm == 0) {
    TURBINE_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kKernel, threads, smem));
    per_sm = std::clamp(per_sm, 1, kW4gMaxBlocksPerSm);
    occupancy[dev & 63].store(per_sm, std::memory_order_relaxed);
  }
  return per_sm;
}

template <int kTN>
int w4g_blocks_per_sm() {
  return w4_kernel_blocks_per_sm<gemm_w4_kernel<kTN>>(kW4gThreads, w4g_smem_bytes<kTN>());
}

/// The most tokens the two-column stream kernel takes (two 8-token mma columns).
inline constexpr int kW4TwoColumnTokens = 16;
/// From this many inputs up, gemm_w4 runs 9..16 tokens not on the two-column GEMV but on the wgmma
/// kernel, or without wgmma on the staged kernel with a 6-chunk ring (measured on Llama-3-8B's down
/// projection, k = 14336; its other Linears have k = 4096).
inline constexpr int kW4LongK = 8192;

// The two-column stream kernel (gemv_w4.cuh, one tile a block) with x as stored and an fp16 store.
template <int kWarps, bool kScaleAfter, int kDepth>
inline constexpr auto w4_two_column_kernel =
    gemv_w4_stream_kernel<kWarps, kScaleAfter, GemvX<__half>, GemvStore<__half, __half>, kDepth, 2>;

template <int kWarps, bool kScaleAfter, int kDepth>
int w4_two_column_blocks_per_sm() {
  return w4_kernel_blocks_per_sm<w4_two_column_kernel<kWarps, kScaleAfter, kDepth>>(
      kWarps * 32, w4_stream_out_smem(kWarps, 2, 1));
}

// One launch shape of the two-column path: where W's tiles fit the SMs' resident blocks, launches
// and returns true.
template <int kWarps, bool kScaleAfter, int kDepth>
bool try_w4_two_columns(const W4Matrix& w, const __half* x, const __half* bias, __half* y, int tokens,
                        cudaStream_t stream) {
  const int64_t tiles = ceil_div(w.n, kGemvRows);
  if (tiles > int64_t(device_sm_count()) * w4_two_column_blocks_per_sm<kWarps, kScaleAfter, kDepth>()) return false;
  launch_gemv_w4_stream<kWarps, kScaleAfter, GemvX<__half>, GemvStore<__half, __half>, kDepth, 2>(
      w, tokens, 1, GemvX<__half>{x}, GemvStore<__half, __half>{y, bias}, stream, pdl_available());
  return true;
}

/// y = x * W^T (+ bias) for 9..16 tokens with the GEMV's stream kernel and two 8-token mma columns,
/// where W's 16-row tiles all fit in one wave of resident blocks; returns false, launching nothing,
/// where they do not (a larger W: the GEMM kernels are faster there). Measured on an H100
/// (PERFORMANCE.md, 2026-12-06) at 16 tokens: o 4096x4096 8.30 us against the wgmma GEMM's 9.70,
/// qkv 6144x4096 11.56 against 13.63, down 4096x14336 22.15 against 22.44; gate_up 28672x4096 50.9
/// against 42.5 (not taken). 8 warps a tile with a ring of 2 chunks where that fits one wave (o,
/// down), else 4 warps and 4 chunks (qkv). Resident blocks come from the occupancy query: the 4-warp
/// form with scales after the sum needs 134 registers a lane, 3 blocks an SM, not 4.
inline bool gemv_w4_two_columns(const W4Matrix& w, const __half* x, const __half* bias, __half* y, int tokens,
                                cudaStream_t stream) {
  if (tokens > kW4TwoColumnTokens) return false;
  if (w.group == 128)
    return try_w4_two_columns<8, true, 2>(w, x, bias, y, tokens, stream) ||
           try_w4_two_columns<4, true, 4>(w, x, bias, y, tokens, stream);
  return try_w4_two_columns<8, false, 2>(w, x, bias, y, tokens, stream) ||
         try_w4_two_columns<4, false, 4>(w, x, bias, y, tokens, stream);
}

template <int kTN>
void launch_gemm_w4_kernel(const W4Matrix& w, const __half* x, const __half* bias, __half* y, int tokens,
                           cudaStream_t stream, const W4gWorkspace* own = nullptr) {
  constexpr size_t kSmem = w4g_smem_bytes<kTN>();
  const int per_sm = w4g_blocks_per_sm<kTN>();
  const W4gWorkspace& ws = own ? *own : w4g_workspace();
  const int row_blocks = static_cast<int>(ceil_div(w.n, kW4gRows));
  const int64_t token_tiles = ceil_div(tokens, 8 * kTN);
  check(token_tiles <= 65535, "gemm_w4: ", tokens, " tokens is too many (at most ", 65535 * 8 * kTN, ")");
  const int64_t tiles = row_blocks * token_tiles;
  // Split k until the blocks fill the GPU once, keeping at least two 256-input steps per split.
  const int64_t slots = int64_t(ws.sms) * per_sm;
  const int steps = static_cast<int>(ceil_div(w.k, kW4gStepK));
  int64_t splits = 1;
  if (tiles < slots && tiles <= ws.counter_count) {
    const int64_t fit = static_cast<int64_t>(ws.partial_float4s / (size_t(tiles) * kTN * kW4gThreads));
    splits = std::clamp<int64_t>(std::min(slots / tiles, fit), 1, std::max(1, steps / 2));
  }
  const int k_split = static_cast<int>(ceil_div(steps, splits)) * kW4gStepK;
  splits = ceil_div(w.k, k_split);  // <= the splits asked for: the workspace holds them
  launch_kernel(gemm_w4_kernel<kTN>,
                dim3(static_cast<unsigned>(row_blocks), static_cast<unsigned>(token_tiles), static_cast<unsigned>(splits)),
                dim3(kW4gThreads), kSmem, stream, false, w.qweight, w.params, x, bias, y, w.n, w.k, w.group, tokens,
                k_split, ws.partials, ws.counters);
}


// ---- The staged kernel (gemm_w4 uses it; the kernel above stays for comparison) -----------------
// What limited the kernel above (150-200 TFLOP/s): every warp owned 16 rows and all the block's
// tokens, so each 16-byte x vector read from shared memory fed only two mma (shared-memory bandwidth
// capped it near half the mma rate); one step of weights in flight per warp, in registers; and the
// split-k sums were added by the last block of a tile alone (up to 128 KB read by one SM, a tail of
// a microsecond or more at 64 tokens).
//
// Here a warp owns kMR 16-row tiles and kTN 8-token columns: each x vector read feeds 2 kMR mma,
// each dequantized weight 2 kTN. A block is 8 warps: 8 / kWT row groups x kWT token groups (kWT = 2
// splits the tokens over two warps that dequantize the same weights: fewer accumulators per warp).
// Weights, their params and x all go through a kStages-deep cp.async ring in shared memory, one
// 128-input chunk per stage, so several chunks of every row are in flight without registers. A
// lane reads back exactly the weight vectors it would have loaded (layout [row tile][h][lane],
// conflict-free), and the fragment mapping is the kernel above's (and the GEMV's): lane (g, t) takes
// inputs 32 t .. 32 t + 31 of a chunk, word j feeding two k16 mma steps with x unit 4 t + j.
// Split k writes fp32 partials [split][token][n] and a second small kernel (launched with
// programmatic dependent launch) adds them in split order over the whole GPU: deterministic and no
// single-block tail.
inline constexpr int kW4sThreads = 256;
inline constexpr int kW4sChunk = 128;                  // inputs per pipeline stage
inline constexpr int kW4sXStride = kW4sChunk + 16;     // halves per token row of x (the pad: see w4s_x_unit)

// The static shape of one staged-kernel variant. kSub: chunks per ring stage (each chunk keeps its
// own slot: kStages x kSub slots), issued and waited for together, so that a stage reads kSub x 64
// contiguous bytes of each weight row instead of 64 (DRAM locality), at kSub times the bytes a stage.
template <int kMR, int kTN, int kWT, int kStages, int kSub = 1>
struct W4sTile {
  static_assert(kMR == 1 || kMR == 2 || kMR == 4, "row tiles per warp: 1, 2 or 4");
  static_assert(kTN == 1 || kTN == 2 || kTN == 4 || kTN == 8, "token columns per warp: 1, 2, 4 or 8");
  static_assert(kWT == 1 || kWT == 2, "token groups per block: 1 or 2");
  static_assert(kStages >= 2, "at least two stages");
  static_assert(kSub == 1 || kSub == 2 || kSub == 4, "1, 2 or 4 chunks a stage");
  static constexpr int kSlots = kStages * kSub;            // one chunk a slot
  static constexpr int kRowGroups = 8 / kWT;
  static constexpr int kWarpRows = 16 * kMR, kWarpTokens = 8 * kTN;
  static constexpr int kRows = kRowGroups * kWarpRows;     // rows of W per block
  static constexpr int kTokens = kWT * kWarpTokens;        // tokens per block
  static constexpr int kXHalves = kTokens * kW4sXStride;   // one chunk of x
  static constexpr int kWVecs = kRowGroups * kMR * 2 * 32; // one chunk of weights, in 16-byte vectors (= its params)
  static constexpr int kXCopies = kTokens * (kW4sChunk / 8) / kW4sThreads;  // 16-byte x copies per thread and chunk
  static constexpr int kWCopies = kWVecs / kW4sThreads;                     // weight (and param) copies per thread
  static_assert(kTokens % 16 == 0 && kWVecs % kW4sThreads == 0, "whole copies per thread");
  static constexpr size_t kChunkBytes = size_t(kXHalves) * 2 + size_t(kWVecs) * (16 + 4);
  static constexpr size_t kSmem = kSlots * kChunkBytes;
  // Two blocks per SM where their shared memory fits (sm_90: 228 KB, 1 KB reserved per block); the
  // register allocator is then asked for <= 128 registers.
  static constexpr int kMinBlocks = kSmem <= 112 * 1024 ? 2 : 1;
};

// Where 16-byte unit u (inputs 8u .. 8u+7 of a chunk) of a token row lives. The reads of one
// quarter warp (rows g, g + 1; units 4t + j, t = 0..3) would put lanes t and t + 2 on the same banks
// (64 bytes apart); flipping bit 0 of the units in the upper half of the row separates them, and the
// 32-byte row pad puts row g + 1 on the other four 16-byte bank groups.
static __device__ __forceinline__ int w4s_x_unit(int u) { return u ^ ((u >> 3) & 1); }

// Word j of a 16-byte weight vector (j is a constant after unrolling).
static __device__ __forceinline__ uint32_t w4s_word(const uint4& v, int j) {
  return j == 0 ? v.x : j == 1 ? v.y : j == 2 ? v.z : v.w;
}

template <int kMR, int kTN, int kWT, int kStages, int kSub = 1>
__global__ static void __launch_bounds__(kW4sThreads, (W4sTile<kMR, kTN, kWT, kStages, kSub>::kMinBlocks))
    gemm_w4s_kernel(const uint32_t* __restrict__ qw, const __half2* __restrict__ params, const __half* __restrict__ x,
                    const __half* __restrict__ bias, __half* __restrict__ y, int n, int k, int group, int tokens,
                    int k_split, float* __restrict__ partials) {
  using Tile = W4sTile<kMR, kTN, kWT, kStages, kSub>;
  if (partials) pdl_launch_dependents();  // the split-k reduction may be scheduled (it waits for us)
  extern __shared__ __align__(16) uint4 w4s_dyn_smem[];
  __half* const xs = reinterpret_cast<__half*>(w4s_dyn_smem);                   // [slot][token][kW4sXStride]
  uint4* const wsm = w4s_dyn_smem + size_t(Tile::kSlots) * Tile::kXHalves / 8;  // [slot][row tile][h][lane]
  uint32_t* const psm = reinterpret_cast<uint32_t*>(wsm + Tile::kSlots * Tile::kWVecs);  // as wsm, one u32 each

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int rg = warp % Tile::kRowGroups, tg = warp / Tile::kRowGroups;
  const int row0 = blockIdx.x * Tile::kRows, tok0 = blockIdx.y * Tile::kTokens;
  const int kbeg = blockIdx.z * k_split, kend = min(k, kbeg + k_split);
  const int chunks = (kend - kbeg + kW4sChunk - 1) / kW4sChunk;
  const int stages = (chunks + kSub - 1) / kSub;
  // group is 32, 64 or 128 (gemm_w4 checks): a shift, where a division by it costs ~20 instructions
  const int words = k / 8, groups = k / group, group_shift = 31 - __clz(group);

  // Weight copy q of this thread is vector v = tid + 256 q of a chunk: row tile v / 64 of the block
  // (row group * kMR + m), half h = (v / 32) % 2 (rows g or g + 8), lane v % 32 = this lane. Rows
  // past n re-read row n - 1 (valid memory; their sums are never stored). Recomputed per stage:
  // a few integer ops, where keeping them would cost registers.
  auto wrow = [&](int q) {
    const int v = tid + kW4sThreads * q;
    return min(row0 + 16 * (v / 64) + 8 * ((v / 32) & 1) + g, n - 1);
  };
  // One chunk into its slot: x[tok0 ..][chunk] (consecutive threads, consecutive 16-byte units of a token row),
  // then this thread's weight vectors and their params (inputs 32 t .. 32 t + 31 of the chunk: one
  // group, all inside k or all outside, since k and the split are multiples of 32).
  auto issue = [&](int slot, int step) {
    const int kc = kbeg + step * kW4sChunk;
    __half* const xd = xs + slot * Tile::kXHalves;
#pragma unroll
    for (int q = 0; q < Tile::kXCopies; ++q) {
      const int v = tid + kW4sThreads * q, r = v / (kW4sChunk / 8), u = v % (kW4sChunk / 8);
      const int kk = kc + 8 * u;
      const bool ok = tok0 + r < tokens && kk < kend;
      const __half* src = ok ? x + static_cast<int64_t>(tok0 + r) * k + kk : x;
      cp_async16(smem_u32(xd + r * kW4sXStride + 8 * w4s_x_unit(u)), src, ok);
    }
    const int kw = kc + 32 * t;
    const bool okw = kw < kend;
#pragma unroll
    for (int q = 0; q < Tile::kWCopies; ++q) {
      const int v = tid + kW4sThreads * q;
      const uint32_t* wsrc = okw ? qw + static_cast<int64_t>(wrow(q)) * words + kw / 8 : qw;
      const __half2* psrc = okw ? params + static_cast<int64_t>(wrow(q)) * groups + (kw >> group_shift) : params;
      cp_async16(smem_u32(wsm + slot * Tile::kWVecs + v), wsrc, okw);
      cp_async4(smem_u32(psm + slot * Tile::kWVecs + v), psrc, okw);  // zeros: weight 0, never NaN
    }
  };

  float acc[kMR][kTN][4];
#pragma unroll
  for (int m = 0; m < kMR; ++m)
#pragma unroll
    for (int tn = 0; tn < kTN; ++tn) acc[m][tn][0] = acc[m][tn][1] = acc[m][tn][2] = acc[m][tn][3] = 0.f;

  // One chunk of this warp's tiles: kMR x kTN x 8 mma.
  auto compute = [&](int slot) {
    const uint4* wl = wsm + slot * Tile::kWVecs + rg * (kMR * 64) + lane;
    const uint32_t* pl = psm + slot * Tile::kWVecs + rg * (kMR * 64) + lane;
    uint4 wv[kMR][2];
    __half2 pv[kMR][2];
#pragma unroll
    for (int m = 0; m < kMR; ++m)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        wv[m][h] = wl[(2 * m + h) * 32];
        pv[m][h] = w4_as_half2(pl[(2 * m + h) * 32]);
      }
    const __half* xt = xs + slot * Tile::kXHalves + (tg * Tile::kWarpTokens + g) * kW4sXStride;
    const __half2 k960 = w4_as_half2(0x63806380u);  // 960: 960 - (1024 + z) = -(64 + z)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      uint4 qa[kMR], qb[kMR];  // rows g and g + 8 of each tile, inputs 32 t + 8 j + (0..7)
#pragma unroll
      for (int m = 0; m < kMR; ++m) {
        const __half2 za = __high2half2(pv[m][0]), zb = __high2half2(pv[m][1]);
        qa[m] = w4_dequant8_fast(w4s_word(wv[m][0], j), __low2half2(pv[m][0]), za, __hsub2(k960, za));
        qb[m] = w4_dequant8_fast(w4s_word(wv[m][1], j), __low2half2(pv[m][1]), zb, __hsub2(k960, zb));
      }
      const int unit = w4s_x_unit(4 * t + j);
#pragma unroll
      for (int tn = 0; tn < kTN; ++tn) {
        // x[token 8 tn + g of the warp's tokens][the same 8 inputs]
        const uint4 xv = *reinterpret_cast<const uint4*>(xt + tn * 8 * kW4sXStride + 8 * unit);
#pragma unroll
        for (int m = 0; m < kMR; ++m) {
          gemv_mma<__half>(acc[m][tn], qa[m].x, qb[m].x, qa[m].y, qb[m].y, xv.x, xv.y);
          gemv_mma<__half>(acc[m][tn], qa[m].z, qb[m].z, qa[m].w, qb[m].w, xv.z, xv.w);
        }
      }
    }
  };

  // Stage s = chunks s kSub .. s kSub + kSub - 1, chunk c in slot c % kSlots (chunks past the
  // split's end are neither loaded nor computed).
  auto issue_stage = [&](int s) {
#pragma unroll
    for (int u = 0; u < kSub; ++u) {
      const int c = s * kSub + u;
      if (c < chunks) issue(c % Tile::kSlots, c);
    }
  };
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < stages) issue_stage(s);
    cp_async_commit();  // always: the wait below counts groups
  }
  for (int i = 0; i < stages; ++i) {
    // Stage i is in (this thread's copies; the barrier makes everyone's visible) and every warp is
    // done with stage i - 1's slots, which the copies below overwrite.
    cp_async_wait<kStages - 2>();
    __syncthreads();
    if (i + kStages - 1 < stages) issue_stage(i + kStages - 1);
    cp_async_commit();
#pragma unroll
    for (int u = 0; u < kSub; ++u) {
      const int c = i * kSub + u;
      if (c < chunks) compute(c % Tile::kSlots);
    }
  }

  // acc[m][tn][2h + e] = row row0 + 16 (rg kMR + m) + g + 8h, token tok0 + tg kWarpTokens + 8 tn + 2t + e.
  float* const part = partials ? partials + static_cast<int64_t>(blockIdx.z) * tokens * n : nullptr;
#pragma unroll
  for (int m = 0; m < kMR; ++m)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int row = row0 + 16 * (rg * kMR + m) + g + 8 * h;
      if (row >= n) continue;
      const float b = !part && bias ? __half2float(bias[row]) : 0.f;
#pragma unroll
      for (int tn = 0; tn < kTN; ++tn)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int tok = tok0 + tg * Tile::kWarpTokens + 8 * tn + 2 * t + e;
          if (tok >= tokens) continue;
          const int64_t at = static_cast<int64_t>(tok) * n + row;
          if (part) __stcg(part + at, acc[m][tn][2 * h + e]);
          else y[at] = __float2half_rn(acc[m][tn][2 * h + e] + b);
        }
    }
}

// y[i] = sum of the splits' partials[split][i] in split order (+ bias): i = token * n + row.
__global__ static void __launch_bounds__(256)
    gemm_w4s_reduce_kernel(const float* __restrict__ partials, const __half* __restrict__ bias, __half* __restrict__ y,
                           int n, int64_t count, int splits) {
  pdl_wait();  // the partials are the previous kernel's
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= count) return;
  float s = 0.f;
  for (int z = 0; z < splits; ++z) s += __ldcg(partials + z * count + i);
  if (bias) s += __half2float(bias[i % n]);
  y[i] = __float2half_rn(s);
}

// The once-per-device set-up of one staged variant (shared-memory limit, resident blocks per SM).
template <int kMR, int kTN, int kWT, int kStages, int kSub = 1>
int w4s_blocks_per_sm() {
  return w4_kernel_blocks_per_sm<gemm_w4s_kernel<kMR, kTN, kWT, kStages, kSub>>(
      kW4sThreads, W4sTile<kMR, kTN, kWT, kStages, kSub>::kSmem);
}

// The k split of a W4 GEMM grid (the staged and the wgmma kernels): k is split, in units of `unit`
// inputs and at least `min_units` units a split, until tiles x splits fill `slots` once and the fp32
// partials [split][token][n] fit the workspace; k_split is a multiple of `unit`, and splits (one
// per k_split of k) no more than were asked for.
struct W4KSplit {
  int64_t splits, k_split;
};
inline W4KSplit w4_k_split(int64_t k, int64_t n, int tokens, int64_t tiles, int64_t slots, int64_t unit, int min_units,
                           const W4gWorkspace& ws) {
  const int64_t units = ceil_div(k, unit);
  const int64_t fit = static_cast<int64_t>(ws.partial_float4s * 4 / (size_t(tokens) * size_t(n)));
  int64_t splits = 1;
  if (tiles < slots)
    splits = std::clamp<int64_t>(std::min({slots / tiles, units / std::max(1, min_units), fit}), 1, units);
  const int64_t k_split = ceil_div(units, splits) * unit;
  return {ceil_div(k, k_split), k_split};
}

// With more than one split: y = the splits' partials added in split order (+ bias), by
// gemm_w4s_reduce_kernel (launched with programmatic dependent launch: it waits for the GEMM).
inline void w4_reduce_splits(const W4KSplit& split, const float* partials, const __half* bias, __half* y, int n,
                             int tokens, cudaStream_t stream) {
  if (split.splits <= 1) return;
  const int64_t count = int64_t(tokens) * n;
  launch_kernel(gemm_w4s_reduce_kernel, dim3(static_cast<unsigned>(ceil_div(count, 256))), dim3(256), 0, stream,
                pdl_available(), partials, bias, y, n, count, static_cast<int>(split.splits));
}

/// Fewest 128-input chunks per k split by default: shorter splits spend more on partial sums
/// (R x T x 4 bytes per split against R x 64 bytes of weights per chunk) than they gain in blocks.
inline constexpr int kW4sMinChunks = 4;

// The staged kernel on a grid of (row blocks, token tiles, k splits): k is split until the blocks
// fill the GPU once, keeping at least `min_chunks` chunks per split and the partials within the
// workspace; split partials are added by gemm_w4s_reduce_kernel. kSub chunks a ring stage (W4sTile)
// leave the grid as it is (a split's last stage may be part empty).
template <int kMR, int kTN, int kWT, int kStages, int kSub = 1>
void launch_gemm_w4s(const W4Matrix& w, const __half* x, const __half* bias, __half* y, int tokens,
                     cudaStream_t stream, const W4gWorkspace* own = nullptr, int min_chunks = kW4sMinChunks) {
  using Tile = W4sTile<kMR, kTN, kWT, kStages, kSub>;
  const int per_sm = w4s_blocks_per_sm<kMR, kTN, kWT, kStages, kSub>();
  const W4gWorkspace& ws = own ? *own : w4g_workspace();
  const int64_t row_blocks = ceil_div(w.n, Tile::kRows);
  const int64_t token_tiles = ceil_div(tokens, Tile::kTokens);
  check(token_tiles <= 65535, "gemm_w4: ", tokens, " tokens is too many (at most ", 65535 * Tile::kTokens, ")");
  const int64_t tiles = row_blocks * token_tiles, slots = int64_t(ws.sms) * per_sm;
  const W4KSplit split = w4_k_split(w.k, w.n, tokens, tiles, slots, kW4sChunk, min_chunks, ws);
  float* const partials = split.splits > 1 ? reinterpret_cast<float*>(ws.partials) : nullptr;
  launch_kernel(gemm_w4s_kernel<kMR, kTN, kWT, kStages, kSub>,
                dim3(static_cast<unsigned>(row_blocks), static_cast<unsigned>(token_tiles),
                     static_cast<unsigned>(split.splits)),
                dim3(kW4sThreads), Tile::kSmem, stream, false, w.qweight, w.params, x, bias, y, w.n, w.k, w.group,
                tokens, static_cast<int>(split.k_split), partials);
  w4_reduce_splits(split, partials, bias, y, w.n, tokens, stream);
}

// The staged kernel's tile by token count, gemm_w4's choice where the code has no wgmma (and where
// k is too long for the bulk form's x buffer; bench_cuda_kernels gemm_w4_variant/... times the
// others): kMR x kTN x kWT x stages.
using W4sLaunchFn = void (*)(const W4Matrix&, const __half*, const __half*, __half*, int, cudaStream_t,
                             const W4gWorkspace*, int);
inline W4sLaunchFn w4s_pick(int tokens) {
  if (tokens <= 16) return &launch_gemm_w4s<2, 2, 1, 4>;  // 256 rows x 16 tokens, 2 blocks per SM
  if (tokens <= 32) return &launch_gemm_w4s<2, 4, 1, 3>;  // 256 rows x 32 tokens, 2 blocks per SM
  return &launch_gemm_w4s<2, 4, 2, 4>;                    // 128 rows x 64 tokens, 2 blocks per SM
}

// The shared memory of the wgmma kernel's bulk-copy form (the stages' mbarriers after the stages).
template <int kN>
inline constexpr size_t kW4wBulkSmem = W4wTile<kN>::kSmem + kW4wStages * sizeof(uint64_t);
// Blocks per SM of the bulk-copy form (its shared memory raised first), cached per device.
template <int kN, int kWD, bool kTokensFast = false, int kMinBlocks = 1>
int w4w_bulk_blocks_per_sm() {
  return w4_kernel_blocks_per_sm<gemm_w4_wgmma_kernel<kN, kWD, 0, true, kTokensFast, kMinBlocks>>(kW4wThreads,
                                                                                                  kW4wBulkSmem<kN>);
}

// A wgmma kernel (gemm_w4_wgmma.cuh, sm_90a) of kN tokens a block and `smem` bytes of shared memory
// on the staged kernel's grid rule (its k split), workspace and reduce kernel, the grid (row blocks,
// token tiles, splits) or with kTokensFast (token tiles, row blocks, splits); where the running code
// has no wgmma, the staged kernel of w4s_pick instead.
template <auto kKernel, int kN, bool kTokensFast = false>
void launch_w4w_grid(size_t smem, const W4Matrix& w, const __half* x, const __half* bias, __half* y, int tokens,
                     cudaStream_t stream, const W4gWorkspace* own, int min_chunks, bool pdl) {
  if (tokens <= 0) return;
  if (!w4w_available()) return w4s_pick(tokens)(w, x, bias, y, tokens, stream, own, min_chunks);
  const int per_sm = w4_kernel_blocks_per_sm<kKernel>(kW4wThreads, smem);
  const W4gWorkspace& ws = own ? *own : w4g_workspace();
  const int64_t row_blocks = ceil_div(w.n, kW4wRows), token_tiles = ceil_div(tokens, kN);
  check((kTokensFast ? row_blocks : token_tiles) <= 65535, "gemm_w4: ", tokens, " tokens x ", w.n,
        " rows is too many (at most 65535 tiles of ", kTokensFast ? kW4wRows : kN, ")");
  const int64_t tiles = row_blocks * token_tiles, slots = int64_t(ws.sms) * per_sm;
  const W4KSplit split = w4_k_split(w.k, w.n, tokens, tiles, slots, kW4wChunk, min_chunks, ws);
  float* const partials = split.splits > 1 ? reinterpret_cast<float*>(ws.partials) : nullptr;
  const int64_t gx = kTokensFast ? token_tiles : row_blocks, gy = kTokensFast ? row_blocks : token_tiles;
  const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(gy), static_cast<unsigned>(split.splits));
  launch_kernel(kKernel, grid, dim3(kW4wThreads), smem, stream, pdl, w.qweight, w.params, x, bias, y, w.n, w.k,
                w.group, tokens, static_cast<int>(split.k_split), partials);
  w4_reduce_splits(split, partials, bias, y, w.n, tokens, stream);
}

// The wgmma kernel with kN tokens per block, kWD chunks of weights in flight per warp (registers)
// and x through 4-byte cp.async copies.
template <int kN, int kWD, int kKnock = 0>
void launch_gemm_w4_wgmma(const W4Matrix& w, const __half* x, const __half* bias, __half* y, int tokens,
                          cudaStream_t stream, const W4gWorkspace* own, int min_chunks) {
  launch_w4w_grid<gemm_w4_wgmma_kernel<kN, kWD, kKnock>, kN>(W4wTile<kN>::kSmem, w, x, bias, y, tokens, stream, own,
                                                             min_chunks, false);
}

// Whether one token tile of kN tokens over k inputs, permuted, fits the bulk form's x buffer (at
// 128 tokens up to k = 32768, at 64 up to 65536).
template <int kN>
constexpr bool w4w_bulk_fits(int64_t k) {
  return size_t(ceil_div(k, int64_t(kW4wChunk))) * W4wTile<kN>::kStageBytes <= kW4wXPermBytes;
}

// The wgmma kernel with x through bulk copies (kXBulk): w4w_permute_x_kernel lays x out in the
// workspace's x_perm, then the GEMM (launched with programmatic dependent launch, so that its weight
// loads start while the permutation runs) loads each stage with one bulk copy. Tokens go through in
// slabs of what x_perm holds, each slab a permutation and a GEMM.
template <int kN, int kWD, bool kTokensFast = false, int kMinBlocks = 1>
void launch_gemm_w4_wgmma_bulk(const W4Matrix& w, const __half* x, const __half* bias, __half* y, int tokens,
                               cudaStream_t stream, const W4gWorkspace* own, int min_chunks) {
  if (tokens <= 0) return;
  if (!w4w_available()) return w4s_pick(tokens)(w, x, bias, y, tokens, stream, own, min_chunks);
  const W4gWorkspace& ws = own ? *own : w4g_workspace();
  const int64_t chunks = ceil_div(w.k, kW4wChunk);
  check(w4w_bulk_fits<kN>(w.k), "gemm_w4: k = ", w.k, " is too long (at most ",
        kW4wXPermBytes / W4wTile<kN>::kStageBytes * kW4wChunk, ")");
  const int64_t slab_tiles = static_cast<int64_t>(kW4wXPermBytes / (size_t(chunks) * W4wTile<kN>::kStageBytes));
  const bool pdl = pdl_available();
  for (int64_t t0 = 0; t0 < tokens; t0 += slab_tiles * kN) {
    const int slab = static_cast<int>(std::min<int64_t>(tokens - t0, slab_tiles * kN));
    const int64_t threads = ceil_div(slab, kN) * chunks * kN * 4;
    launch_kernel(w4w_permute_x_kernel<kN>, dim3(static_cast<unsigned>(ceil_div(threads, 256))), dim3(256), 0,
                  stream, false, x + t0 * w.k, ws.x_perm, slab, w.k, static_cast<int>(chunks), threads);
    launch_w4w_grid<gemm_w4_wgmma_kernel<kN, kWD, 0, true, kTokensFast, kMinBlocks>, kN, kTokensFast>(
        kW4wBulkSmem<kN>, w, ws.x_perm, bias, y + t0 * w.n, slab, stream, own, min_chunks, pdl);
  }
}

// gemm_w4's bulk-copy wgmma form with kN tokens a block (gemm_w4 says why): 2 weight chunks in
// flight a warp, the token tiles of a row block side by side from 64 tokens a block, and the
// 64-token block held to two blocks an SM. The dispatch below and gemm_w4_prepare both take it from here.
template <int kN>
struct W4wForm {
  static constexpr bool kTokensFast = kN >= 64;
  static constexpr int kMinBlocks = kN == 64 ? 2 : 1;
  static void launch(const W4Matrix& w, const __half* x, const __half* bias, __half* y, int tokens,
                     cudaStream_t stream, const W4gWorkspace* own, int min_chunks) {
    launch_gemm_w4_wgmma_bulk<kN, 2, kTokensFast, kMinBlocks>(w, x, bias, y, tokens, stream, own, min_chunks);
  }
  static int blocks_per_sm() { return w4w_bulk_blocks_per_sm<kN, 2, kTokensFast, kMinBlocks>(); }
};

// The bulk-copy wgmma form with the block of tokens that suits the count; a smaller block, then the
// staged kernel, where k is too long for a tile's x images.
inline void launch_gemm_w4_bulk_by_tokens(const W4Matrix& w, const __half* x, const __half* bias, __half* y,
                                          int tokens, cudaStream_t stream, const W4gWorkspace* own) {
  W4sLaunchFn launch = w4s_pick(tokens);
  if (tokens > 64 && w4w_bulk_fits<128>(w.k)) launch = &W4wForm<128>::launch;
  else if (tokens > 32 && w4w_bulk_fits<64>(w.k)) launch = &W4wForm<64>::launch;
  else if (tokens > 16 && w4w_bulk_fits<32>(w.k)) launch = &W4wForm<32>::launch;
  else if (w4w_bulk_fits<16>(w.k)) launch = &W4wForm<16>::launch;
  launch(w, x, bias, y, tokens, stream, own, kW4sMinChunks);
}

// Calls f(name, launch) for each variant that the benchmark times and the test checks: the staged
// kernel's, named mMR_tTN_wWT_sSTAGES[_cC] (warp tile 16 MR rows x 8 TN tokens, WT token groups per
// 8-warp block, STAGES ring stages of C chunks, 1 unless named), and the wgmma kernel's wgN_dD (N
// tokens a block, D chunks in flight a warp; _xb its bulk-copy form, gemm_w4's, _tf with the token
// tiles fastest in the grid, _2b with registers for two blocks an SM). A function, so the variants
// are instantiated only where it is called. Removed after H100 runs (PERFORMANCE.md): a wgmma kernel
// with its weights in an S-stage shared-memory cp.async ring (wgr16_s6 / wgr16_s8, 1.02-1.25x
// wg16_d2's time at 16 tokens, 2026-12-06 evening); 4 weight chunks in flight a warp at two blocks
// an SM (wg16 / wg32_d4_xb_2b, wg64_d4_xb_tf_2b; 1.04-2.7x gemm_w4's time at 16-64 tokens) and
// 16-token blocks three an SM (wg16_d2_xb_3b; 2.4-5.8x); a k split's blocks as one thread-block
// cluster that adds the splits through distributed shared memory instead of a second kernel
// (1.3-1.5x the bulk form's time on o, qkv and down at 16-64 tokens; 2026-12-07 morning).
template <class F>
void for_each_w4s_variant(F&& f) {
  f("m1_t2_w1_s4", &launch_gemm_w4s<1, 2, 1, 4>);
  f("m2_t2_w1_s4", &launch_gemm_w4s<2, 2, 1, 4>);
  f("m4_t2_w1_s3", &launch_gemm_w4s<4, 2, 1, 3>);
  f("m2_t2_w2_s4", &launch_gemm_w4s<2, 2, 2, 4>);
  f("m2_t4_w1_s3", &launch_gemm_w4s<2, 4, 1, 3>);
  f("m2_t4_w1_s4", &launch_gemm_w4s<2, 4, 1, 4>);
  f("m4_t2_w2_s4", &launch_gemm_w4s<4, 2, 2, 4>);
  f("m1_t8_w1_s4", &launch_gemm_w4s<1, 8, 1, 4>);
  f("m2_t4_w2_s4", &launch_gemm_w4s<2, 4, 2, 4>);
  f("m2_t8_w1_s4", &launch_gemm_w4s<2, 8, 1, 4>);
  f("m4_t4_w2_s4", &launch_gemm_w4s<4, 4, 2, 4>);
  f("m2_t4_w2_s2_c2", &launch_gemm_w4s<2, 4, 2, 2, 2>);  // two chunks a stage: 128 contiguous bytes a row
  f("m2_t2_w1_s2_c2", &launch_gemm_w4s<2, 2, 1, 2, 2>);
  f("m2_t2_w1_s3_c2", &launch_gemm_w4s<2, 2, 1, 3, 2>);
  f("m2_t2_w1_s7", &launch_gemm_w4s<2, 2, 1, 7>);     // deeper rings at 16 tokens: 7 chunks of
  f("m1_t2_w1_s10", &launch_gemm_w4s<1, 2, 1, 10>);   // slots, 10, and 8 at one block an SM
  f("m2_t2_w1_s4_c2", &launch_gemm_w4s<2, 2, 1, 4, 2>);
  f("wg16_d2", &launch_gemm_w4_wgmma<16, 2>);
  f("wg16_d2_xb", &launch_gemm_w4_wgmma_bulk<16, 2>);  // x permuted, then bulk copies
  f("wg32_d2", &launch_gemm_w4_wgmma<32, 2>);
  f("wg32_d2_xb", &launch_gemm_w4_wgmma_bulk<32, 2>);
  f("wg64_d2", &launch_gemm_w4_wgmma<64, 2>);
  f("wg64_d2_xb", &launch_gemm_w4_wgmma_bulk<64, 2>);
  f("wg64_d2_xb_tf", &launch_gemm_w4_wgmma_bulk<64, 2, true>);  // token tiles fastest in the grid
  f("wg128_d2_xb_tf", &launch_gemm_w4_wgmma_bulk<128, 2, true>);
  f("wg64_d2_xb_2b", &launch_gemm_w4_wgmma_bulk<64, 2, false, 2>);  // registers capped: 2 blocks an SM
}

}  // namespace detail

/// A workspace of gemm_w4's own (split-k partial sums, about 8 MB on an H100, and 8 MB for the
/// permuted x of the wgmma kernel's bulk-copy form): a caller that may run gemm_w4 at the same
/// time as another (another stream, another thread, another model's graph) passes its own, since
/// two calls sharing one would mix their partial sums (and permuted inputs). Made on the current
/// device, outside any graph capture.
class GemmW4Workspace {
 public:
  GemmW4Workspace() {
    ws_ = detail::make_w4g_workspace([this](size_t bytes) {
      // make_w4g_workspace allocates the partial sums, the counters, then the permuted x
      const char* what = used_ < 2 ? "gemm_w4 split-k workspace" : "gemm_w4 permuted x";
      buffers_[used_] = DeviceBuffer<unsigned char>(bytes, what);
      return static_cast<void*>(buffers_[used_++].data());
    });
  }
  /// What the kernel reads.
  const detail::W4gWorkspace& view() const { return ws_; }

 private:
  DeviceBuffer<unsigned char> buffers_[3];
  int used_ = 0;
  detail::W4gWorkspace ws_;
};

/// Does gemm_w4's once-per-device set-up now (the shared workspace, ~16 MB on an H100, and the
/// kernels' attributes): call it before capturing a CUDA graph that contains gemm_w4 calls, since
/// a capture cannot allocate. gemm_w4 otherwise does it on its first call.
inline void gemm_w4_prepare() {
  (void)detail::w4g_workspace();
  (void)detail::w4g_blocks_per_sm<2>();
  (void)detail::w4g_blocks_per_sm<4>();
  (void)detail::w4g_blocks_per_sm<8>();
  (void)detail::w4s_blocks_per_sm<2, 2, 1, 4>();  // w4s_pick's variants
  (void)detail::w4s_blocks_per_sm<2, 4, 1, 3>();
  (void)detail::w4s_blocks_per_sm<2, 4, 2, 4>();
  (void)detail::w4s_blocks_per_sm<2, 2, 1, 3, 2>();  // 9..16 tokens at long k
  if (detail::w4w_available()) {  // the probe launches and copies: not inside a capture
    (void)detail::W4wForm<16>::blocks_per_sm();  // gemm_w4's wgmma forms
    (void)detail::W4wForm<32>::blocks_per_sm();
    (void)detail::W4wForm<64>::blocks_per_sm();
    (void)detail::W4wForm<128>::blocks_per_sm();
  }
  (void)detail::w4_two_column_blocks_per_sm<8, true, 2>();  // gemv_w4_two_columns' four forms
  (void)detail::w4_two_column_blocks_per_sm<4, true, 4>();
  (void)detail::w4_two_column_blocks_per_sm<8, false, 2>();
  (void)detail::w4_two_column_blocks_per_sm<4, false, 4>();
  (void)device_sm_count();
  (void)pdl_available();
}

/// The most tokens at which gemm_w4 was measured faster than multiplying by a dequantized copy of W
/// with cuBLAS, on the current device: 512 where the code has wgmma (an H100, 2026-12-07, Llama-3-8B's
/// Linears: 0.30-0.50x that path's time at 128 tokens, 0.49-0.67x at 256, 0.68-0.84x at 512;
/// PERFORMANCE.md), else 64 (the staged kernel, the same day: 0.64-0.97x at 128 tokens and
/// 1.14-1.52x at 256 on the H100; it lost from 128 tokens on an H200 on 2026-12-04, and other GPUs
/// have not been measured). gemm_w4 grows with the tokens and the dequantization does not, so they
/// cross above (a straight line through the measured points puts it at 650-1000 tokens; not
/// measured). Asks the device once (outside any graph capture: call it at set-up).
inline int gemm_w4_max_useful_tokens() { return detail::w4w_available() ? 512 : 64; }

/// y = x * W^T (+ bias) with 4-bit W on the tensor cores, for 9 tokens and up (any count is
/// computed; 1..8 are faster with gemv_w4). x: [tokens, w.k] fp16, bias: [w.n] or null,
/// y: [tokens, w.n] fp16; fp32 accumulation. Up to 16 tokens, where W's row tiles fit one wave
/// and k < kW4LongK, the GEMV's stream kernel with two token columns (gemv_w4_two_columns).
/// Otherwise, where the code is sm_90a, the wgmma kernel (gemm_w4_wgmma.cuh) in its bulk-copy form
/// (x permuted by a small kernel first), 16, 32, 64 or 128 tokens a block; where it is not, the
/// staged kernel (w4s_pick, or its 6-chunk ring up to 16 tokens where k is long).
/// A k split adds a second, small kernel (launched with programmatic dependent launch). `workspace`:
/// the caller's own scratch (split-k sums, permuted x), or null for the device's shared one (then
/// calls must not overlap in time).
inline void gemm_w4(const W4Matrix& w, const __half* x, const __half* bias, __half* y, int tokens,
                    cudaStream_t stream = nullptr, const GemmW4Workspace* workspace = nullptr) {
  check(w.n > 0 && w.k > 0 && (w.group == 32 || w.group == 64 || w.group == 128) && w.k % w.group == 0,
        "gemm_w4: bad sizes (n ", w.n, ", k ", w.k, ", group ", w.group,
        "; k must be a multiple of the group, 32/64/128)");
  check(tokens >= 0, "gemm_w4: ", tokens, " tokens");
  check(aligned16(w.qweight) && aligned16(x), "gemm_w4: qweight and x must be 16-byte aligned");
  if (tokens == 0) return;
  const detail::W4gWorkspace* own = workspace ? &workspace->view() : nullptr;
  // Measured on Llama-3-8B's Linears on an H100 (PERFORMANCE.md, 2026-12-07; the history is there):
  // where the code is sm_90a, the wgmma kernel in its bulk-copy form (x permuted by a small kernel,
  // then one bulk copy a stage; launch_gemm_w4_wgmma_bulk) beats the staged kernel and the cp.async
  // form at every count from 16 to 256 tokens, and the staged kernel's long-k ring at 16 tokens
  // (down: 22.0 against 23.0 us). Where W is small, the GEMV's stream kernel with two token columns
  // is faster still at up to 16 tokens (o: 9.1 against 11.2 us; gemv_w4_two_columns says where). A
  // block of 128 tokens beats two of 64 from 65 tokens on (gate_up at 128: 63 against 88 us) and
  // loses below (62 against 50 at 64); above 32 tokens the grid puts the token tiles of one row
  // block side by side (they share its weights in L2: 0.87-0.94x the time on gate_up at 128 and 256
  // tokens with 64-token tiles), and the 64-token block is held to 128 registers so that two fit an
  // SM (at 64 tokens 0.84x the time on gate_up, 0.94x on qkv and down, 1.05x on o). Without wgmma:
  // the staged kernel (w4s_pick; the 6-chunk ring where k is long, up to 16 tokens).
  const bool long_k = tokens <= detail::kW4TwoColumnTokens && w.k >= detail::kW4LongK;
  if (long_k && !detail::w4w_available())
    detail::launch_gemm_w4s<2, 2, 1, 3, 2>(w, x, bias, y, tokens, stream, own, detail::kW4sMinChunks);
  else if (long_k || !detail::gemv_w4_two_columns(w, x, bias, y, tokens, stream))
    detail::launch_gemm_w4_bulk_by_tokens(w, x, bias, y, tokens, stream, own);
  TURBINE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace turbine::cuda
