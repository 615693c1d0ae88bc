#pragma once
// The W4 GEMV's ring kernel (W4Kernel::kRing, sm_90): the weights come through the copy engine
// (tensor maps) into a small shared-memory ring instead of the lanes' own loads, so that a block
// holds few registers (about 64 a thread, where the kStream kernel's register ring takes about 125)
// and the next kernel's blocks fit beside it and start their own streams before it ends.
//
// A block is W consumer warps and one producer warp. One lane of the producer asks for every stage
// of the block (16 rows x 1024 inputs: the two 8-row halves the output policy names, each one 3-D
// box of qweight, 128-byte swizzled, and one 2-D box of params), waiting only for a slot to be
// free; it never waits for the previous kernel, whose outputs the weights do not depend on. The
// consumers wait for the previous kernel, bring x into shared memory with one bulk copy, and read
// each stage with ldmatrix (the swizzle puts the 8 rows of each 8 x 16-byte matrix on distinct
// banks): lane (g, c) receives word c of each 16-byte unit of its rows' 64-byte chunk, i.e. inputs
// 32m + 8c .. +7 (m = 0..3) of the chunk, and x is read with the same permutation (the mma's k
// order is free). The arithmetic is the kStream kernel's (w4_chunk_mma, scales after the sum).
//
// Measured on an H100 (2026-12-08, tools/probe_w4_ring_gemv.cu, PERFORMANCE.md): on gate_up
// (28672 x 4096) 23.7 us against the kStream kernel's 27.7 at one token (91.6% of the copy ceiling
// against 78.4%) and 24.1 against 28.3 at four; on o and qkv it lost (5.9 against 5.7 us, 7.7
// against 7.4: a short GEMV's time is its serial path once x lands, not its stream), on down it
// tied at one token and lost at four. gemv_w4's default (W4Kernel::kAuto) takes it where W's
// 16-row tiles are many and fit one wave (w4_ring_default).
//
// Limits (w4_ring_supported): compute capability 9.0, group 128, k a multiple of 1024, plain x of
// at most kW4RingMaxX bytes, an output policy whose rows g = 0..7 of a half are consecutive.
#include <cuda.h>
#include <cudaTypedefs.h>

#include <cmath>
#include <cstdint>
#include <map>
#include <mutex>
#include <tuple>

#include "bulk_copy.cuh"
#include "check.cuh"
#include "gemv.cuh"
#include "gemv_fused.cuh"
#include "w4_chunk.cuh"
#include "w4_layout.cuh"

namespace turbine::cuda {

/// W4Kernel::kRing: the most bytes of x (tokens x k x 2) a block copies into its shared memory.
inline constexpr size_t kW4RingMaxX = 32 * 1024;

namespace detail {

inline constexpr int kW4RingKs = 1024;                                 // inputs a stage
inline constexpr int kW4RingHalfQ = 8 * kW4RingKs / 2;                 // 4 KB: 8 rows of qweight
inline constexpr int kW4RingHalfP = 8 * (kW4RingKs / 128) * 4;         // 256 B: their params
inline constexpr int kW4RingSlot = 2 * kW4RingHalfQ + 1024;            // 1024-aligned slots (the swizzle's span)
inline constexpr int kW4RingWarps = 8, kW4RingSlots = 4;               // the launch shape (measured: above)

/// The ring kernel's tensor maps of one W4Matrix.
struct W4RingMaps {
  CUtensorMap q;  ///< qweight [n, k/8] uint32 as {32 words, n rows, k/256 blocks of 128 bytes}, box {32, 8, 4}
  CUtensorMap p;  ///< params [n, k/128] as {k/128, n}, box {8, 8}
};

// Output policies whose rows() are ra(g) = ra(0) + g and rb(g) = rb(0) + g (clamped at n - 1 only
// where the rows past n are never stored): the ring asks for 8 consecutive rows a half.
template <class E>
inline constexpr bool w4_ring_rows_consecutive = false;
template <class Y, class T>
inline constexpr bool w4_ring_rows_consecutive<GemvStore<Y, T>> = true;
template <class T>
inline constexpr bool w4_ring_rows_consecutive<GemvGateUpSilu<T>> = true;
template <class T>
inline constexpr bool w4_ring_rows_consecutive<GemvResidualStats<T>> = true;

__device__ __forceinline__ void w4_ring_ldmatrix4(uint32_t addr, uint32_t& d0, uint32_t& d1, uint32_t& d2,
                                                  uint32_t& d3) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(d0), "=r"(d1), "=r"(d2), "=r"(d3)
               : "r"(addr));
#else
  (void)addr, d0 = d1 = d2 = d3 = 0;
  __trap();
#endif
}

// One 8-row half of a stage: qweight as a 3-D box (8 rows x 4 blocks of 128 bytes) and params as a
// 2-D box (8 rows x 8 groups), both completing `bar`'s transaction.
__device__ __forceinline__ void w4_ring_ask(const CUtensorMap* q, const CUtensorMap* p, unsigned char* qdst,
                                            unsigned char* pdst, int row, int stage, uint64_t* bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], [%5];" ::"r"(
          bulk::smem_addr(qdst)),
      "l"(q), "r"(0), "r"(row), "r"(stage * (kW4RingKs / 256)), "r"(bulk::smem_addr(bar))
      : "memory");
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];" ::"r"(
          bulk::smem_addr(pdst)),
      "l"(p), "r"(stage * (kW4RingKs / 128)), "r"(row), "r"(bulk::smem_addr(bar))
      : "memory");
#else
  (void)q, (void)p, (void)qdst, (void)pdst, (void)row, (void)stage, (void)bar;
  __trap();
#endif
}

// x at input base + 4 (i - base): w4_chunk_mma asks for kk + 8 jj, and this lane's word jj holds
// the inputs 32 jj on.
struct W4RingX {
  const __half* x;
  int base;
  __device__ __forceinline__ uint4 operator()(int i) const {
    return *reinterpret_cast<const uint4*>(x + base + 4 * (i - base));
  }
};

// Shared memory: [slot][half][block of 128 bytes][8 rows] qweight lines, then [half][8 rows][8
// groups] params in the slot's last 1024 bytes; x; the warps' sums per tile; the barriers.
template <int W, int S, class E>
__global__ static void __launch_bounds__((W + 1) * 32)
    gemv_w4_ring_kernel(const __grid_constant__ CUtensorMap qmap, const __grid_constant__ CUtensorMap pmap,
                        const __half* __restrict__ x, int n, int k, int tokens, int tiles, int tiles_per_block,
                        const E ep) {
  pdl_launch_dependents();
  extern __shared__ unsigned char w4_ring_raw[];
  unsigned char* const ring = w4_ring_raw + ((1024 - (bulk::smem_addr(w4_ring_raw) & 1023)) & 1023);
  const int xbytes = (tokens * k * 2 + 15) / 16 * 16;
  __half* const xs = reinterpret_cast<__half*>(ring + S * kW4RingSlot);
  float* const part = reinterpret_cast<float*>(ring + S * kW4RingSlot + xbytes);
  uint64_t* const full = reinterpret_cast<uint64_t*>(part + tiles_per_block * W * 4 * 32);
  uint64_t* const empty = full + S;
  uint64_t* const xbar = empty + S;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int tile0 = static_cast<int>(blockIdx.x) * tiles_per_block, ntiles = min(tiles_per_block, tiles - tile0);
  const int stages = k / kW4RingKs, total = ntiles * stages;
  if (threadIdx.x == 0) {
    for (int s = 0; s < S; ++s) {
      bulk::barrier_init(&full[s], 1);
      bulk::barrier_init(&empty[s], W);
    }
    bulk::barrier_init(xbar, 1);
    bulk::fence_init();
  }
  __syncthreads();
  if (warp == W) {  // the producer
    if (lane == 0)
      for (int it = 0; it < total; ++it) {
        const int slot = it % S, t = it / stages, st = it % stages;
        if (it >= S) bulk::wait(&empty[slot], ((it / S) - 1) & 1);
        bulk::arrive_expect_tx(&full[slot], 2 * (kW4RingHalfQ + kW4RingHalfP));
        int ra, rb;
        ep.rows(tile0 + t, 0, n, ra, rb);
        unsigned char* dst = ring + slot * kW4RingSlot;
        w4_ring_ask(&qmap, &pmap, dst, dst + 2 * kW4RingHalfQ, ra, st, &full[slot]);
        w4_ring_ask(&qmap, &pmap, dst + kW4RingHalfQ, dst + 2 * kW4RingHalfQ + kW4RingHalfP, rb, st, &full[slot]);
      }
    return;
  }
  pdl_wait();  // x, and what the outputs overwrite, belong to the previous kernel until here
  if (threadIdx.x == 0) {
    bulk::arrive_expect_tx(xbar, xbytes);
    bulk::copy_g2s(xs, x, xbytes, xbar);
  }
  bulk::wait(xbar, 0);
  const int g = lane >> 2, c = lane & 3;
  const __half* const xrow = xs + min(g, tokens - 1) * k;
  const bool has_x = g < tokens;
  // ldmatrix: this lane gives the address of row (lane & 7) of matrix lane >> 3; matrices 0 / 1
  // are halves a / b at unit u, 2 / 3 at unit u + 1
  const int mi = lane >> 3, lrow = lane & 7, lhalf = mi & 1, lunit = mi >> 1;
  float acc[1][4] = {{0.f, 0.f, 0.f, 0.f}}, acc1[1][4] = {{0.f, 0.f, 0.f, 0.f}};
  for (int it = 0; it < total; ++it) {
    const int slot = it % S, st = it % stages;
    bulk::wait(&full[slot], (it / S) & 1);
    const unsigned char* const sp = ring + slot * kW4RingSlot;
    const uint32_t sbase = bulk::smem_addr(sp);
#pragma unroll
    for (int ch = warp; ch < kW4RingKs / 128; ch += W) {
      const int blk = ch >> 1, h = ch & 1;
      const uint32_t line = sbase + lhalf * kW4RingHalfQ + (blk * 8 + lrow) * 128;
      const int u0 = 4 * h + lunit, u1 = u0 + 2;
      uint32_t d0, d1, d2, d3, e0, e1, e2, e3;
      w4_ring_ldmatrix4(line + ((u0 ^ lrow) << 4), d0, d1, d2, d3);
      w4_ring_ldmatrix4(line + ((u1 ^ lrow) << 4), e0, e1, e2, e3);
      const uint4 a4 = make_uint4(d0, d2, e0, e2), b4 = make_uint4(d1, d3, e1, e3);
      const unsigned char* const ps = sp + 2 * kW4RingHalfQ;
      const __half2 pa = *reinterpret_cast<const __half2*>(ps + (g * (kW4RingKs / 128) + ch) * 4);
      const __half2 pb = *reinterpret_cast<const __half2*>(ps + kW4RingHalfP + (g * (kW4RingKs / 128) + ch) * 4);
      const int kb = st * kW4RingKs + ch * 128 + 8 * c;
      const W4RingX xl{xrow, kb};
      w4_chunk_mma<1, true>(a4, b4, pa, pb, xl, xl, has_x, false, kb, acc, acc1);
    }
    __syncwarp();
    if (lane == 0) bulk::arrive(&empty[slot]);
    if (st == stages - 1) {  // this warp's share of tile it / stages is done
      float* p = part + ((it / stages) * W + warp) * 4 * 32 + lane;
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        p[e * 32] = acc[0][e] + acc1[0][e];
        acc[0][e] = acc1[0][e] = 0.f;
      }
    }
  }
  asm volatile("bar.sync 1, %0;" ::"r"(W * 32) : "memory");  // the consumers only
  for (int i = threadIdx.x; i < ntiles * 64; i += W * 32) {  // warp-uniform: ntiles * 64 is a multiple of 32
    const int t = i >> 6, j = (i >> 5) & 1, l = i & 31;
    float s0 = 0.f, s1 = 0.f;
#pragma unroll
    for (int q = 0; q < W; ++q) {
      const float* p = part + ((t * W + q) * 4) * 32 + l;
      s0 += p[j * 32];
      s1 += p[(j + 2) * 32];
    }
    gemv_epilogue(ep, tile0 + t, l >> 2, 2 * (l & 3) + j, tokens, s0, s1, n);
  }
}

inline size_t w4_ring_smem(int warps, int slots, int tokens, int k, int tiles_per_block) {
  return 1024 + size_t(slots) * kW4RingSlot + (size_t(tokens) * k * 2 + 15) / 16 * 16 +
         size_t(tiles_per_block) * warps * 4 * 32 * sizeof(float) + (2 * slots + 1) * sizeof(uint64_t);
}

inline PFN_cuTensorMapEncodeTiled_v12000 w4_ring_encoder() {
  static const PFN_cuTensorMapEncodeTiled_v12000 f = [] {
    void* e = nullptr;
    cudaDriverEntryPointQueryResult found{};
    TURBINE_CUDA_CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &e, 12000, cudaEnableDefault, &found));
    check(found == cudaDriverEntryPointSuccess && e, "gemv_w4: the driver has no cuTensorMapEncodeTiled");
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(e);
  }();
  return f;
}

inline W4RingMaps w4_ring_maps(const W4Matrix& w) {
  W4RingMaps m{};
  const cuuint32_t es[3] = {1, 1, 1};
  const cuuint64_t qdims[3] = {32, cuuint64_t(w.n), cuuint64_t(w.k / 256)};
  const cuuint64_t qstrides[2] = {cuuint64_t(w.k / 2), 128};
  const cuuint32_t qbox[3] = {32, 8, kW4RingKs / 256};
  CUresult r = w4_ring_encoder()(&m.q, CU_TENSOR_MAP_DATA_TYPE_UINT32, 3, const_cast<uint32_t*>(w.qweight), qdims,
                                 qstrides, qbox, es, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                                 CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  check(r == CUDA_SUCCESS, "gemv_w4: the qweight tensor map (n ", w.n, ", k ", w.k, ") was refused: error ", int(r));
  const cuuint64_t pdims[2] = {cuuint64_t(w.k / 128), cuuint64_t(w.n)};
  const cuuint64_t pstrides[1] = {cuuint64_t(w.k / 128) * 4};
  const cuuint32_t pbox[2] = {kW4RingKs / 128, 8};
  r = w4_ring_encoder()(&m.p, CU_TENSOR_MAP_DATA_TYPE_UINT32, 2, const_cast<__half2*>(w.params), pdims, pstrides, pbox,
                        es, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_NONE,
                        CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  check(r == CUDA_SUCCESS, "gemv_w4: the params tensor map (n ", w.n, ", k ", w.k, ") was refused: error ", int(r));
  return m;
}

/// Whether the ring kernel can run this launch (plain x given as `x`; E's rows consecutive).
template <class E>
bool w4_ring_supported(const W4Matrix& w, int tokens, const void* x) {
  return w4_ring_rows_consecutive<E> && x != nullptr && pdl_available() && w.group == 128 &&
         w.k % kW4RingKs == 0 && tokens >= 1 && tokens <= kGemvMaxTokens &&
         size_t(tokens) * w.k * sizeof(__half) <= kW4RingMaxX && reinterpret_cast<uintptr_t>(w.params) % 16 == 0;
}

/// The ring's launch shape for `tiles` 16-row tiles: tiles a block, and whether all blocks fit one
/// wave on the device's SMs.
struct W4RingShape {
  int tiles_per_block = 0;
  bool one_wave = false;
};

/// Tiles a block: the fewest with which every block fits one wave on the device's SMs (measured:
/// one wave with three blocks an SM beat two an SM at one token, and a second partial wave cost up
/// to 30%). Where no count up to kW4RingMaxTiles gives one wave (the LM head), the count whose
/// last wave is fullest (the fewest resident-block slots left idle). Cached per (device, tiles,
/// tokens, k): each answer takes a few occupancy queries.
inline constexpr int kW4RingMaxTiles = 16;

template <class E>
W4RingShape w4_ring_shape(int tiles, int tokens, int k) {
  constexpr int W = kW4RingWarps, S = kW4RingSlots;
  constexpr auto kernel = gemv_w4_ring_kernel<W, S, E>;
  static std::mutex mutex;
  static std::map<std::tuple<int, int, int, int>, W4RingShape> known;
  int dev = 0;
  TURBINE_CUDA_CHECK(cudaGetDevice(&dev));
  const auto key = std::make_tuple(dev, tiles, tokens, k);
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (const auto it = known.find(key); it != known.end()) return it->second;
  }
  w4_allow_smem<kernel>(200 * 1024, tokens, k);  // the occupancy queries need the limit raised
  W4RingShape best;
  double best_fill = 0;
  for (int tpb = 1; tpb <= kW4RingMaxTiles; ++tpb) {
    const size_t smem = w4_ring_smem(W, S, tokens, k, tpb);
    int per_sm = 0;
    TURBINE_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, (W + 1) * 32, smem));
    if (per_sm == 0) break;  // more tiles only need more shared memory
    const int64_t blocks = ceil_div(int64_t(tiles), int64_t(tpb)), slots = int64_t(per_sm) * device_sm_count();
    if (blocks <= slots) {
      best = {tpb, true};
      break;
    }
    const double waves = double(blocks) / double(slots), fill = waves / std::ceil(waves);
    if (fill > best_fill + 1e-9) best = {tpb, false}, best_fill = fill;
  }
  check(best.tiles_per_block > 0, "gemv_w4: the ring kernel does not fit an SM for k = ", k, " and ", tokens,
        " tokens");
  std::lock_guard<std::mutex> lock(mutex);
  known[key] = best;
  return best;
}

/// gemv_w4's default choice of the ring (W4Kernel::kAuto): where it is supported, W has at least 8
/// tiles of 16 rows an SM and its blocks fit one wave: gate_up of Llama-3-8B, as measured above; not
/// o, qkv or down, which the kStream kernel runs as fast or faster, nor W taller than one wave (the
/// LM head: several waves of the ring are not yet measured against kStream).
template <class E>
bool w4_ring_default(const W4Matrix& w, int tokens, const void* x) {
  if (!w4_ring_supported<E>(w, tokens, x) || int64_t(w.n) < int64_t(16) * 8 * device_sm_count()) return false;
  return w4_ring_shape<E>(static_cast<int>(ceil_div(w.n, kGemvRows)), tokens, w.k).one_wave;
}

template <class E>
void launch_gemv_w4_ring(const W4Matrix& w, int tokens, const __half* x, const E& ep, cudaStream_t stream, bool pdl) {
  constexpr int W = kW4RingWarps, S = kW4RingSlots;
  constexpr auto kernel = gemv_w4_ring_kernel<W, S, E>;
  const int tiles = static_cast<int>(ceil_div(w.n, kGemvRows));
  const int tpb = w4_ring_shape<E>(tiles, tokens, w.k).tiles_per_block;
  const size_t smem = w4_ring_smem(W, S, tokens, w.k, tpb);
  const W4RingMaps maps = w4_ring_maps(w);
  launch_kernel(kernel, dim3(static_cast<unsigned>(ceil_div(tiles, tpb))), dim3((W + 1) * 32), smem, stream, pdl,
                maps.q, maps.p, x, w.n, w.k, tokens, tiles, tpb, ep);
}

}  // namespace detail

}  // namespace turbine::cuda
