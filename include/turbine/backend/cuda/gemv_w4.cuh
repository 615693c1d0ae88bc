#pragma once
// W4A16 decode GEMV: y[t, n] = sum_k x[t, k] * W[n, k] (+ bias) for 1..8 tokens, with W stored as
// group-wise asymmetric 4-bit integers (AWQ / RTN: w = (q - z) * s, one fp16 scale and integer zero
// per `group` inputs of a row), dequantized in registers. fp16 activations and weights. The layout
// and the dequantization: w4_layout.cuh.
//
// The kernels are gemv.cuh's with a 4-bit weight stream: 16-row tiles, warps split k, lane (g, c)
// loads 16 bytes (32 inputs) of rows g and g + 8 per 128-input chunk (4 lanes per row), the four
// words of each feed four m16n8k16 mma steps (the tokens are the n = 8 side), and the first loads
// go out before the programmatic-launch wait. Three kernels (W4Launch picks; bench_cuda_kernels
// gemv_w4_variant times them): kBase, one tile per block and each warp's loads all at once, then
// its arithmetic; kStream, each warp's chunks through a ring of loads in flight across one or more
// tiles per block, with (group 128) the scale applied to the fp32 sums instead of to every weight;
// kRing (gemv_w4_ring.cuh), kStream's arithmetic on weights that the copy engine brings into a
// shared-memory ring by tensor maps, one producer lane, so that its blocks hold few registers and
// the next kernel's fit beside them. The default (kAuto) is kRing where W has many 16-row tiles
// in one wave (gate_up of Llama-3-8B: 0.86x kStream's time on an H100, 2026-12-08) and kStream
// elsewhere (o, qkv, down: kRing as fast or slower; the LM head: not measured). (An earlier
// copy-engine ring, per-row cp.async.bulk copies with the lanes' own layout, measured 0.62-0.95x
// kStream's speed on an H100, 2026-12-05, and was removed: the copy engine takes many small copies
// slowly; PERFORMANCE.md.)
// x and the outputs are policies (gemv.cuh: GemvX, GemvStore; gemv_fused.cuh: GemvXNorm,
// GemvRopeKv, GemvGateUpSilu), so the decode step's folds run on the 4-bit stream too
// (gemv_w4_norm, gemv_w4_norm_rope, gemv_w4_rope, gemv_w4_gate_up_silu, gemv_w4_norm_gate_up_silu).
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "gemv.cuh"
#include "gemv_fused.cuh"
#include "gemv_w4_ring.cuh"
#include "w4_chunk.cuh"
#include "w4_layout.cuh"

namespace turbine::cuda {

/// Which kernel a W4 GEMV launch uses (the kernel benchmark times each; gemv_w4 picks by default).
enum class W4Kernel {
  kBase,    ///< one block per 16 rows, warps split k, every weight load of a warp issued at once
  kStream,  ///< as kBase, but each warp streams its k share through a ring of kW4Depth loads in flight,
            ///< a block may take several 16-row tiles, and (group 128) the scale is applied after the mma
  kRing,    ///< the weights through the copy engine into a shared-memory ring (gemv_w4_ring.cuh; sm_90,
            ///< group 128, k a multiple of 1024, plain x of at most kW4RingMaxX bytes)
  kAuto,    ///< kRing where w4_ring_default says (many 16-row tiles in one wave), else kStream
};

/// Where the W4 GEMV reads plain x from (the norm sources read their inputs by the lanes: the
/// tile-sums norm's inputs through the copy engine, measured on an H100 on 2026-12-06, made the
/// norm-stats decode chain 8% slower, 364 -> 334 tok/s, and was removed).
enum class W4X {
  kAuto,        ///< the launcher's choice
  kLanes,       ///< each lane loads its x slices from global memory (L2, then L1) as it needs them
  kCopyEngine,  ///< the copy engine copies all of x into each block's shared memory (sm_90 and later),
                ///< where x is at most kW4CopyEngineMaxX bytes (else as kLanes)
};

/// W4X::kCopyEngine: the most bytes of x (tokens x k x 2) a block copies into its shared memory.
inline constexpr size_t kW4CopyEngineMaxX = 64 * 1024;
/// W4X::kAuto: the copy engine brings x up to this many tokens (sm_90 and later).
inline constexpr int kW4CopyEngineAutoTokens = 4;

/// A launch configuration of the W4 GEMV; zeros mean "the launcher's choice".
struct W4Launch {
  W4Kernel kernel = W4Kernel::kAuto;  ///< which kernel (kAuto: kRing or kStream, as w4_ring_default says)
  int warps = 0;            ///< kStream: 4 or 8 warps per block (kBase picks by k)
  int tiles_per_block = 0;  ///< kStream: 16-row tiles per block, 1 to kW4MaxTiles
  bool scale_after = true;  ///< kStream, group 128: multiply the fp32 sums of (q - z) x by the scale
  W4X x = W4X::kAuto;       ///< where plain x is read from (gemv_w4, gemv_w4_residual, gemv_w4_gate_up_silu)
  int early_slots = -1;     ///< kStream: ring slots loaded before the programmatic-launch wait, 0 to
                            ///< kW4Depth (the rest after the wait and x's copy request); -1: all
};

/// kStream: the most 16-row tiles one block takes.
inline constexpr int kW4MaxTiles = 4;

namespace detail {

/// kStream: 128-input chunks of weights (2 rows x 16 bytes per lane) in flight per warp.
inline constexpr int kW4Depth = 4;

// The kBase kernel: one block per 16 rows, warps split k, lane (g, c) loads 16 bytes (32 inputs) of
// rows g and g + 8 per 128-input chunk, kUnroll chunks per warp and step, all loaded before any is
// multiplied (the first step before the programmatic-launch wait).
template <int kWarps, int kUnroll, class X, class E>
__global__ static void __launch_bounds__(kWarps * 32)
    gemv_w4_kernel(const uint32_t* __restrict__ qw, const __half2* __restrict__ params, int n, int k, int group,
                   int tokens, const X xs, const E ep) {
  pdl_launch_dependents();
  extern __shared__ uint4 gemv_w4_staged[];  // the x source's staging area (dynamic, often empty)
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int g = lane >> 2, c = lane & 3;
  int ra, rb;
  ep.rows(static_cast<int>(blockIdx.x), g, n, ra, rb);
  const int words = k / 8, groups = k / group;
  const uint32_t* wa = qw + static_cast<int64_t>(ra) * words + 4 * c;
  const uint32_t* wb = qw + static_cast<int64_t>(rb) * words + 4 * c;
  const __half2* pa = params + static_cast<int64_t>(ra) * groups;
  const __half2* pb = params + static_cast<int64_t>(rb) * groups;
  const bool has_x = g < tokens;
  const uint4 zero = make_uint4(0, 0, 0, 0);
  float d0[4] = {0.f, 0.f, 0.f, 0.f}, d1[4] = {0.f, 0.f, 0.f, 0.f};
  uint4 va[kUnroll], vb[kUnroll];
  // One step: kUnroll 128-input chunks per warp; a lane's 32 inputs of a chunk start at 128 * chunk + 32c.
  auto load_w = [&](int c0) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int kk = (c0 + u) * 128 + 32 * c;
      const bool ok = kk < k;
      va[u] = ok ? vec::load_stream(wa + (c0 + u) * 16) : zero;
      vb[u] = ok ? vec::load_stream(wb + (c0 + u) * 16) : zero;
    }
  };
  const int first = warp * kUnroll;
  if (first * 128 < k) load_w(first);
  pdl_wait();
  __half* const staged = reinterpret_cast<__half*>(gemv_w4_staged);
  gemv_x_start(xs, staged, k, tokens);
  xs.template prologue<kWarps * 32>(staged, k, tokens);
  const auto xl = xs.lane(min(g, tokens - 1), k, 0, staged);
  for (int c0 = first; c0 * 128 < k; c0 += kWarps * kUnroll) {
    if (c0 != first) load_w(c0);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int kk = (c0 + u) * 128 + 32 * c;
      const bool ok = kk < k;  // every lane joins the mma; lanes past k feed zeros
      const __half2 sa = ok ? pa[kk / group] : __half2{}, sb = ok ? pb[kk / group] : __half2{};
      const uint32_t* a = reinterpret_cast<const uint32_t*>(&va[u]);
      const uint32_t* b = reinterpret_cast<const uint32_t*>(&vb[u]);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const uint4 xv = has_x && ok ? xl(kk + 8 * j) : zero;
        const uint4 wA = ok ? w4_dequant8(a[j], sa) : zero, wB = ok ? w4_dequant8(b[j], sb) : zero;
        gemv_mma_chunk<__half>((j & 1) ? d1 : d0, wA, wB, xv);
      }
    }
  }
  gemv_reduce_store<kWarps>(d0, d1, tokens, n, ep);
}

// The kStream kernel. Why not kBase: with k = 4096 each kBase warp issues its only loads at once,
// waits, then computes, so an SM alternates between waiting and computing, and half of an SM's
// lanes idle while the other half dequantizes. Here each warp walks its items (the chunks
// warp, warp + kWarps, ... of each of the block's tiles, one tile after the other) through a ring of
// kW4Depth loads: the load of item i + kW4Depth goes out before item i is multiplied, so every warp
// keeps 4 x 32 bytes per lane in flight for its whole life, across tile boundaries. Scales and zeros
// travel in the ring with their weights (one half2 per row and lane: a lane's 32 inputs are in one
// group for every group size), so no load waits on another. The first `early` loads (kW4Depth by
// default) go out before the programmatic-launch wait, the rest after it and after the x source's
// start(). Why x through the copy engine (GemvXBulk, the default at 1-4 tokens on sm_90): a load of
// x issued after the wait lands after the weight loads already in flight (H100, 2026-12-06: the
// load schedule alone took o 3.03 us, 4.27 with each chunk's x read by the lanes, whether through
// the read-only path, plain or L2-only loads), and no chunk can be multiplied before its x.
// kScaleAfter (group 128: the 16 inputs of an mma step share their rows' scales): the mma sums
// (q - z) x in fp32 per chunk, then one FFMA per sum applies the scale, which takes the HMUL2 per
// weight pair out (2 instead of 3 half2 ops per pair) and rounds the weight never. Otherwise the
// weights are (q - z) * s in fp16, as kBase.
// The warps' partial sums of each tile go to dynamic shared memory after the x source's area;
// one barrier at the end, then each thread finishes rows g and g + 8 of one token (as
// gemv_reduce_store), with the tile index as the policies' block index.
// A shared-memory ring filled with cp.async (8-16 chunks a warp in flight, half the registers) was
// measured 2-4x slower on an H200 (PERFORMANCE.md, 2026-12-05) and removed.
// kDepth: the ring's chunks per warp (gemv_w4 runs kW4Depth). kCols: 8-token mma columns, 1 (up to
// 8 tokens, what gemv_w4 runs) or 2 (up to 16: lanes take tokens g and g + 8; plain x only),
// timed at 16 tokens by bench_cuda_kernels gemv_w4_cols2/ beside the W4 GEMM (2026-12-06, H100:
// faster than the GEMM on the smaller Linears); gemm_w4 runs it at 9..16 tokens where W's tiles fit
// one wave (gemm_w4.cuh, gemv_w4_two_columns). (4 warps, depth 4, two columns, scales after: 134
// registers, 12 warps an SM, not 16.) Measured on an H100 (2026-12-06) and removed: x's lines
// prefetched to L1 after the programmatic-launch wait (no faster on o, 5-20% slower elsewhere) and
// a chunk's four x loads issued together before its first mma (within 1%): x is not what holds
// the GEMV at 1.3-2x the time of its own load schedule (bench ceiling/w4_gemv_schedule). Nor is
// the instruction count: a one-tile form with constant address steps and no tile cursor (165
// instructions a chunk instead of 233) ran within -3% / +6% of this kernel (commit 953e48e).
// Tried on the same H100 and not kept (PERFORMANCE.md, 2026-12-06): the weights in an 8-row
// interleaved order (each load instruction on 512 contiguous bytes: o 9% faster, the other
// Linears within 3.4%) and a register cap with a ring of 2 so that two launches' blocks share an
// SM (at its best 5-44% slower than gemv_w4's own launch, Linear by Linear).
template <int kWarps, bool kScaleAfter, class X, class E, int kDepth = kW4Depth, int kCols = 1>
__global__ static void __launch_bounds__(kWarps * 32)
    gemv_w4_stream_kernel(const uint32_t* __restrict__ qw, const __half2* __restrict__ params, int n, int k,
                          int group_shift, int tokens, int tiles, int tiles_per_block, int x_smem_bytes, int early,
                          const X xs, const E ep) {
  static_assert(kCols == 1 || (kCols == 2 && std::is_same_v<X, GemvX<__half>>),
                "two token columns: only with the plain x source (the norm sources hold kGemvMaxTokens rows)");
  pdl_launch_dependents();
  extern __shared__ uint4 gemv_w4_staged[];
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int g = lane >> 2, c = lane & 3;
  const int words = k >> 3, groups = k >> group_shift, chunks = (k + 127) >> 7;
  const int tile0 = static_cast<int>(blockIdx.x) * tiles_per_block;
  const int ntiles = min(tiles_per_block, tiles - tile0);
  const int per_tile = warp < chunks ? (chunks - 1 - warp) / kWarps + 1 : 0;  // this warp's chunks of a tile
  const int items = ntiles * per_tile;
  const uint4 zero = make_uint4(0, 0, 0, 0);

  // The loading cursor: tile lt, chunk lc, and the rows' weights and params.
  int lt = 0, lc = warp;
  const uint32_t *lwa = nullptr, *lwb = nullptr;
  const __half2 *lpa = nullptr, *lpb = nullptr;
  auto point = [&](int t) {
    int ra, rb;
    ep.rows(tile0 + t, g, n, ra, rb);
    lwa = qw + static_cast<int64_t>(ra) * words + 4 * c;
    lwb = qw + static_cast<int64_t>(rb) * words + 4 * c;
    lpa = params + static_cast<int64_t>(ra) * groups;
    lpb = params + static_cast<int64_t>(rb) * groups;
  };
  uint4 va[kDepth], vb[kDepth];
  __half2 sa[kDepth], sb[kDepth];
  auto load = [&](int s) {  // s: a compile-time slot once unrolled
    const int kk = lc * 128 + 32 * c;
    if (kk < k) {
      va[s] = vec::load_stream(lwa + lc * 16);
      vb[s] = vec::load_stream(lwb + lc * 16);
      sa[s] = __ldg(lpa + (kk >> group_shift));
      sb[s] = __ldg(lpb + (kk >> group_shift));
    } else {  // past k (k not a multiple of 128): x is zero there, the weights only need to be finite
      va[s] = vb[s] = zero;
      sa[s] = sb[s] = __half2{};
    }
    lc += kWarps;
    if (lc >= chunks) {
      lc = warp;
      if (++lt < ntiles) point(lt);
    }
  };
  if (items > 0) point(0);
#pragma unroll
  for (int s = 0; s < kDepth; ++s)
    if (s < items && s < early) load(s);
  pdl_wait();
  __half* const staged = reinterpret_cast<__half*>(gemv_w4_staged);
  float* const partial = reinterpret_cast<float*>(reinterpret_cast<char*>(gemv_w4_staged) + x_smem_bytes);
  gemv_x_start(xs, staged, k, tokens);
#pragma unroll
  for (int s = 0; s < kDepth; ++s)
    if (s < items && s >= early) load(s);
  xs.template prologue<kWarps * 32>(staged, k, tokens);
  const auto xl = xs.lane(min(g, tokens - 1), k, 0, staged);
  const auto xl1 = xs.lane(min(g + 8, tokens - 1), k, 0, staged);  // kCols 2: tokens 8 .. 15
  const bool has_x = g < tokens, has_x1 = kCols == 2 && g + 8 < tokens;

  int ct = 0, cc = warp;  // the computing cursor
  float acc[kCols][4], acc1[kCols][4];
#pragma unroll
  for (int col = 0; col < kCols; ++col)
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[col][j] = acc1[col][j] = 0.f;
  for (int base = 0; base < items; base += kDepth) {
#pragma unroll
    for (int s = 0; s < kDepth; ++s) {
      if (base + s >= items) break;
      const uint4 a4 = va[s], b4 = vb[s];
      const __half2 pa = sa[s], pb = sb[s];
      if (base + s + kDepth < items) load(s);
      const int kk = cc * 128 + 32 * c;
      const bool xin = has_x && kk < k, xin1 = has_x1 && kk < k;
      w4_chunk_mma<kCols, kScaleAfter>(a4, b4, pa, pb, xl, xl1, xin, xin1, kk, acc, acc1);
      cc += kWarps;
      if (cc >= chunks) {  // this warp's share of tile ct is done
        float* p = partial + ((ct * kWarps + warp) * 4 * kCols) * 32 + lane;
#pragma unroll
        for (int col = 0; col < kCols; ++col)
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            p[(4 * col + j) * 32] = acc[col][j] + acc1[col][j];
            acc[col][j] = acc1[col][j] = 0.f;
          }
        cc = warp;
        ++ct;
      }
    }
  }
  __syncthreads();
  const int active = min(kWarps, chunks);  // warps past the last chunk wrote nothing
  for (int i = threadIdx.x; i < ntiles * 64 * kCols; i += kWarps * 32) {
    const int t = i >> (kCols == 2 ? 7 : 6), col = kCols == 2 ? (i >> 6) & 1 : 0, j = (i >> 5) & 1, l = i & 31;
    float s0 = 0.f, s1 = 0.f;
    for (int q = 0; q < active; ++q) {
      const float* p = partial + ((t * kWarps + q) * 4 * kCols + 4 * col) * 32 + l;
      s0 += p[j * 32];
      s1 += p[(j + 2) * 32];
    }
    gemv_epilogue(ep, tile0 + t, l >> 2, 8 * col + 2 * (l & 3) + j, tokens, s0, s1, n);  // warp-uniform
  }
}

// One thread per word: 8 weights of one row dequantized to fp16 with one 16-byte store.
__global__ static void w4_dequantize_kernel(const uint32_t* __restrict__ qw, const __half2* __restrict__ params,
                                            int64_t words, int k, int group, __half* __restrict__ out) {
  const int words_per_row = k / 8, groups = k / group;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < words; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t row = i / words_per_row;
    const int col = static_cast<int>(i % words_per_row) * 8;
    *reinterpret_cast<uint4*>(out + row * k + col) = w4_dequant8(qw[i], params[row * groups + col / group]);
  }
}

template <int kWarps, int kUnroll, class X, class E>
void launch_gemv_w4_kernel(const W4Matrix& w, int tokens, const X& x, const E& e, cudaStream_t stream, bool pdl) {
  constexpr auto kernel = gemv_w4_kernel<kWarps, kUnroll, X, E>;
  const size_t smem = X::smem_bytes(tokens, w.k);
  w4_allow_smem<kernel>(smem, tokens, w.k);
  launch_kernel(kernel, dim3(static_cast<unsigned>(ceil_div(w.n, kGemvRows))), dim3(kWarps * 32), smem, stream, pdl,
                w.qweight, w.params, w.n, w.k, w.group, tokens, x, e);
}

/// The stream kernel's shared memory after x's: each warp's per-lane sums of its 4 k quarters, for
/// every tile of the block and token column.
constexpr size_t w4_stream_out_smem(int warps, int cols, int tiles_per_block) {
  return size_t(tiles_per_block) * warps * 4 * cols * 32 * sizeof(float);
}

template <int kWarps, bool kScaleAfter, class X, class E, int kDepth = kW4Depth, int kCols = 1>
void launch_gemv_w4_stream(const W4Matrix& w, int tokens, int tiles_per_block, const X& x, const E& e,
                           cudaStream_t stream, bool pdl, int early = kDepth) {
  constexpr auto kernel = gemv_w4_stream_kernel<kWarps, kScaleAfter, X, E, kDepth, kCols>;
  const size_t x_smem = (X::smem_bytes(tokens, w.k) + 15) / 16 * 16;
  const size_t smem = x_smem + w4_stream_out_smem(kWarps, kCols, tiles_per_block);
  w4_allow_smem<kernel>(smem, tokens, w.k);
  const int tiles = static_cast<int>(ceil_div(w.n, kGemvRows));
  const int group_shift = w.group == 32 ? 5 : w.group == 64 ? 6 : 7;
  launch_kernel(kernel, dim3(static_cast<unsigned>(ceil_div(tiles, tiles_per_block))), dim3(kWarps * 32), smem, stream,
                pdl, w.qweight, w.params, w.n, w.k, group_shift, tokens, tiles, tiles_per_block, static_cast<int>(x_smem),
                early, x, e);
}

/// The kStream kernel's default launch shape, {warps, tiles} per block, for `tiles` 16-row tiles on
/// `sms` SMs: the first of 8 x 1, 4 x 1, 4 x 2, 4 x 4 whose warps all fit one wave (16 an SM).
inline std::pair<int, int> w4_stream_shape(int64_t tiles, int sms) {
  const std::pair<int, int> shapes[] = {{8, 1}, {4, 1}, {4, 2}, {4, 4}};
  for (const auto& s : shapes)
    if (ceil_div(tiles, int64_t(s.second)) * s.first <= 16 * int64_t(sms)) return s;
  return shapes[3];
}

/// The one host dispatch of the W4 GEMV: run-time sizes and the launch configuration to template
/// arguments. x and the outputs as their policies say (gemv.cuh, gemv_fused.cuh).
template <class X, class E>
void launch_gemv_w4(const W4Matrix& w, int tokens, const X& x, const E& e, cudaStream_t stream, bool pdl,
                    W4Launch how) {
  if (how.kernel == W4Kernel::kRing || how.kernel == W4Kernel::kAuto) {
    const __half* plain = nullptr;  // the ring copies plain x itself; the norm sources need their prologue
    if constexpr (std::is_same_v<X, GemvX<__half>> || std::is_same_v<X, GemvXBulk<__half>>) plain = x.x;
    if (how.kernel == W4Kernel::kRing)
      check(w4_ring_supported<E>(w, tokens, plain), "gemv_w4: W4Kernel::kRing needs compute capability 9.0, group ",
            "128, k a multiple of ", kW4RingKs, ", plain x of at most ", kW4RingMaxX,
            " bytes and an output with consecutive rows (n ", w.n, ", k ", w.k, ", group ", w.group, ", ", tokens,
            " tokens)");
    if (how.kernel == W4Kernel::kRing || w4_ring_default<E>(w, tokens, plain)) {
      launch_gemv_w4_ring(w, tokens, plain, e, stream, pdl);
      return;
    }
  }
  const int chunks = static_cast<int>(ceil_div(w.k, 128));
  if (how.kernel == W4Kernel::kBase) {
    // 128-input chunks per row: enough warps that the first step covers k up to 4096 (every weight
    // load issued before the programmatic-launch wait), fewer for small k.
    if (chunks > 16) launch_gemv_w4_kernel<8, 4>(w, tokens, x, e, stream, pdl);
    else if (chunks > 8) launch_gemv_w4_kernel<4, 4>(w, tokens, x, e, stream, pdl);
    else launch_gemv_w4_kernel<2, 4>(w, tokens, x, e, stream, pdl);
    return;
  }
  const int tiles = static_cast<int>(ceil_div(w.n, kGemvRows));
  // The most warps that fit in one wave (about 125 registers a lane: 16 warps per SM): the first of
  // 8 warps x 1 tile, 4 x 1, 4 x 2, 4 x 4 per block whose warps all fit, so no SM runs a second,
  // partial wave. Measured on an H200 (2026-12-04, PERFORMANCE.md) at Llama-3-8B's Linears: o
  // (256 tiles) best at 8 x 1, qkv (384) at 4 x 1 (8 x 1 was 16% slower: 1.45 waves), gate_up
  // (1792) at 4 x 4.
  int warps = how.warps, tpb = how.tiles_per_block;
  if (warps == 0 || tpb == 0) {
    const std::pair<int, int> pick = w4_stream_shape(tiles, device_sm_count());
    if (warps == 0) warps = pick.first;
    if (tpb == 0) tpb = pick.second;
  }
  check(warps == 4 || warps == 8, "gemv_w4: ", warps, " warps per block is not supported (supported: 4, 8)");
  check(tpb >= 1 && tpb <= kW4MaxTiles, "gemv_w4: ", tpb, " tiles per block is not supported (supported: 1 to ",
        kW4MaxTiles, ")");
  const bool after = how.scale_after && w.group == 128;
  // Ring slots before the wait: all, except that a warp whose whole share fits the ring (o) holds 2
  // back when the copy engine brings x, so that x's copy is queued behind half as many loads (H100,
  // 2026-12-06: o 5.81 -> 5.63 us at one token, 5.98 -> 5.74 at four; a longer share loses by it,
  // qkv 7.46 -> 8.12, and the same for no slots before the wait: o 6.57).
  const bool share_in_ring = int64_t(tpb) * ceil_div(chunks, warps) <= kW4Depth;
  const int early = how.early_slots >= 0                                     ? how.early_slots
                    : std::is_same_v<X, GemvXBulk<__half>> && share_in_ring ? 2
                                                                             : kW4Depth;
  check(early <= kW4Depth, "gemv_w4: ", early, " early ring slots is not supported (supported: 0 to ", kW4Depth, ")");
  if (warps == 4) {
    if (after) launch_gemv_w4_stream<4, true>(w, tokens, tpb, x, e, stream, pdl, early);
    else launch_gemv_w4_stream<4, false>(w, tokens, tpb, x, e, stream, pdl, early);
  } else {
    if (after) launch_gemv_w4_stream<8, true>(w, tokens, tpb, x, e, stream, pdl, early);
    else launch_gemv_w4_stream<8, false>(w, tokens, tpb, x, e, stream, pdl, early);
  }
}

/// Whether a W4 GEMV launch on plain x reads x through the copy engine (W4X::kCopyEngine). The
/// launcher's choice (kAuto): on sm_90 and later, for 1-4 tokens. Measured on an H100 (2026-12-06,
/// PERFORMANCE.md): at 1-4 tokens every Llama-3-8B Linear gained 2-9% (o 6%, qkv 9%, gate 5%, down
/// 6% at one token); at 8 tokens, where every block copies 64 KB of x, o and the LM head lost and
/// gate lost 57% (4 blocks an SM no longer fit).
inline bool w4_x_by_copy_engine(W4Launch how, int tokens, int k) {
  if (how.x == W4X::kLanes) return false;
  const bool able = pdl_available();  // compute capability 9.0 or later: cp.async.bulk and mbarrier transactions
  check(how.x != W4X::kCopyEngine || able, "gemv_w4: W4X::kCopyEngine needs compute capability 9.0 or later");
  const bool fits = size_t(tokens) * k * sizeof(__half) <= kW4CopyEngineMaxX;
  return how.x == W4X::kCopyEngine ? fits : able && fits && tokens <= kW4CopyEngineAutoTokens;
}

/// The one dispatch of plain x: GemvX or GemvXBulk as w4_x_by_copy_engine says.
template <class E>
void launch_gemv_w4_plain_x(const W4Matrix& w, int tokens, const __half* x, const E& e, cudaStream_t stream, bool pdl,
                            W4Launch how) {
  if (w4_x_by_copy_engine(how, tokens, w.k)) launch_gemv_w4(w, tokens, GemvXBulk<__half>{x}, e, stream, pdl, how);
  else launch_gemv_w4(w, tokens, GemvX<__half>{x}, e, stream, pdl, how);
}

inline void check_w4_rope(const char* what, const W4Matrix& w, const RopeKvOutput<__half>& out) {
  check_rope_output(what, out);
  check(w.n == (out.heads + 2 * out.kv_heads) * out.head_dim, what, ": bad sizes (n ", w.n, ", heads ", out.heads,
        ", kv_heads ", out.kv_heads, ", head_dim ", out.head_dim, "; n must be (heads + 2 kv_heads) head_dim)");
}

inline void check_w4(const char* what, const W4Matrix& w, int tokens) {
  check(w.n > 0 && w.k > 0 && (w.group == 32 || w.group == 64 || w.group == 128) && w.k % w.group == 0, what,
        ": bad sizes (n ", w.n, ", k ", w.k, ", group ", w.group, "; k must be a multiple of the group, 32/64/128)");
  check(tokens >= 0 && tokens <= kGemvMaxTokens, what, ": ", tokens, " tokens is not supported (supported: 1 to ",
        kGemvMaxTokens, ")");
  check(aligned16(w.qweight), what, ": qweight must be 16-byte aligned");
}

}  // namespace detail

/// y = x * W^T (+ bias) for 1..8 tokens with 4-bit W. x: [tokens, w.k] fp16, bias: [w.n] or null,
/// y: [tokens, w.n] fp16, or fp32 (logits). prefetch_weights: as gemv() (programmatic dependent
/// launch on sm_90+). how: the kernel and its launch configuration (the default: the launcher's choice).
template <class Y>
  requires std::same_as<Y, __half> || std::same_as<Y, float>
void gemv_w4(const W4Matrix& w, const __half* x, const __half* bias, Y* y, int tokens, cudaStream_t stream = nullptr,
             bool prefetch_weights = true, W4Launch how = {}) {
  detail::check_w4("gemv_w4", w, tokens);
  check(aligned16(x), "gemv_w4: x must be 16-byte aligned");
  if (tokens == 0) return;
  const bool pdl = prefetch_weights && pdl_available();
  detail::launch_gemv_w4_plain_x(w, tokens, x, detail::GemvStore<Y, __half>{y, bias}, stream, pdl, how);
  TURBINE_CUDA_CHECK(cudaGetLastError());
}

/// gemv_norm (gemv_fused.cuh) with 4-bit W: y = rms_norm(residual (+ delta)) * gamma x W^T (+ bias),
/// residual + delta written to in.residual_out (if set). y: [tokens, w.n] fp16 or fp32.
template <VecElement Y>
void gemv_w4_norm(const W4Matrix& w, const NormInput<__half>& in, const __half* bias, Y* y, int tokens,
                  cudaStream_t stream = nullptr, bool prefetch_weights = true, W4Launch how = {}) {
  detail::check_w4("gemv_w4_norm", w, tokens);
  if (tokens == 0) return;
  detail::check_norm_input("gemv_w4_norm", in, tokens, w.k);
  const bool pdl = prefetch_weights && pdl_available();
  detail::launch_gemv_w4(w, tokens, detail::GemvXNorm<__half>{in}, detail::GemvStore<Y, __half>{y, bias}, stream, pdl,
                         how);
  TURBINE_CUDA_CHECK(cudaGetLastError());
}

/// gemv_norm_rope (gemv_fused.cuh) with 4-bit W: the QKV projection of a decode step with the
/// RMSNorm prologue and the rotary + KV-cache store epilogue. w: [(heads + 2 * kv_heads) * head_dim, k].
inline void gemv_w4_norm_rope(const W4Matrix& w, const NormInput<__half>& in, const RopeKvOutput<__half>& out,
                              int tokens, cudaStream_t stream = nullptr, bool prefetch_weights = true,
                              W4Launch how = {}) {
  detail::check_w4("gemv_w4_norm_rope", w, tokens);
  detail::check_w4_rope("gemv_w4_norm_rope", w, out);
  if (tokens == 0) return;
  detail::check_norm_input("gemv_w4_norm_rope", in, tokens, w.k);
  const bool pdl = prefetch_weights && pdl_available();
  detail::launch_gemv_w4(w, tokens, detail::GemvXNorm<__half>{in}, detail::GemvRopeKv<__half>{out}, stream, pdl, how);
  TURBINE_CUDA_CHECK(cudaGetLastError());
}

/// gemv_rope (gemv_fused.cuh) with 4-bit W: the QKV projection of x as stored ([tokens, w.k] fp16,
/// normalized already) with the rotary + KV-cache store epilogue.
inline void gemv_w4_rope(const W4Matrix& w, const __half* x, const RopeKvOutput<__half>& out, int tokens,
                         cudaStream_t stream = nullptr, bool prefetch_weights = true, W4Launch how = {}) {
  detail::check_w4("gemv_w4_rope", w, tokens);
  detail::check_w4_rope("gemv_w4_rope", w, out);
  check(aligned16(x), "gemv_w4_rope: x must be 16-byte aligned");
  if (tokens == 0) return;
  const bool pdl = prefetch_weights && pdl_available();
  detail::launch_gemv_w4_plain_x(w, tokens, x, detail::GemvRopeKv<__half>{out}, stream, pdl, how);
  TURBINE_CUDA_CHECK(cudaGetLastError());
}

/// gemv_residual (gemv_fused.cuh) with 4-bit W: out.residual += x W^T (+ bias), rounded to fp16
/// before the add, and the per-tile sums of squares of the updated rows in out.stats.
inline void gemv_w4_residual(const W4Matrix& w, const __half* x, const ResidualOutput<__half>& out, int tokens,
                             cudaStream_t stream = nullptr, bool prefetch_weights = true, W4Launch how = {}) {
  detail::check_w4("gemv_w4_residual", w, tokens);
  check(aligned16(x), "gemv_w4_residual: x must be 16-byte aligned");
  if (tokens == 0) return;
  detail::check_residual_output("gemv_w4_residual", out, w.n);
  const bool pdl = prefetch_weights && pdl_available();
  detail::launch_gemv_w4_plain_x(w, tokens, x, detail::GemvResidualStats<__half>{out}, stream, pdl, how);
  TURBINE_CUDA_CHECK(cudaGetLastError());
}

/// gemv_gate_up_silu (gemv_fused.cuh) with 4-bit W = [gate; up] ([2 * inter, k]): act = silu(x W_gate^T)
/// * (x W_up^T), act: [tokens, inter] fp16. inter: a multiple of 8.
inline void gemv_w4_gate_up_silu(const W4Matrix& w, const __half* x, __half* act, int tokens,
                                 cudaStream_t stream = nullptr, bool prefetch_weights = true, W4Launch how = {}) {
  detail::check_w4("gemv_w4_gate_up_silu", w, tokens);
  check(w.n % 16 == 0, "gemv_w4_gate_up_silu: n = ", w.n, " is not 2 * inter with inter a multiple of 8");
  check(aligned16(x), "gemv_w4_gate_up_silu: x must be 16-byte aligned");
  if (tokens == 0) return;
  const bool pdl = prefetch_weights && pdl_available();
  detail::launch_gemv_w4_plain_x(w, tokens, x, detail::GemvGateUpSilu<__half>{act}, stream, pdl, how);
  TURBINE_CUDA_CHECK(cudaGetLastError());
}

/// gemv_w4_gate_up_silu with x = rms_norm(residual (+ delta)) * gamma as gemv_w4_norm.
inline void gemv_w4_norm_gate_up_silu(const W4Matrix& w, const NormInput<__half>& in, __half* act, int tokens,
                                      cudaStream_t stream = nullptr, bool prefetch_weights = true, W4Launch how = {}) {
  detail::check_w4("gemv_w4_norm_gate_up_silu", w, tokens);
  check(w.n % 16 == 0, "gemv_w4_norm_gate_up_silu: n = ", w.n, " is not 2 * inter with inter a multiple of 8");
  if (tokens == 0) return;
  detail::check_norm_input("gemv_w4_norm_gate_up_silu", in, tokens, w.k);
  const bool pdl = prefetch_weights && pdl_available();
  detail::launch_gemv_w4(w, tokens, detail::GemvXNorm<__half>{in}, detail::GemvGateUpSilu<__half>{act}, stream, pdl,
                         how);
  TURBINE_CUDA_CHECK(cudaGetLastError());
}

/// W as fp16 [w.n, w.k] (16-byte aligned), for the GEMMs of prefill and large batches: the same
/// values the GEMV multiplies by.
inline void w4_dequantize(const W4Matrix& w, __half* out, cudaStream_t stream = nullptr) {
  check(aligned16(out), "w4_dequantize: out must be 16-byte aligned");
  const int64_t words = int64_t(w.n) * (w.k / 8);
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(ceil_div(words, 256), 132 * 16));
  detail::w4_dequantize_kernel<<<blocks, 256, 0, stream>>>(w.qweight, w.params, words, w.k, w.group, out);
  TURBINE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace turbine::cuda
