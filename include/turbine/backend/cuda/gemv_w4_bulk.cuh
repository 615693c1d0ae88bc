#pragma once
// The W4 GEMV with its weights streamed by the copy engine (sm_90: cp.async.bulk), W4Kernel::kBulk.
//
// Why. The register-ring kernel (kStream) keeps 4 chunks x 32 bytes a lane in flight, about 64 KB an
// SM at 16 resident warps, and measured 38-59% of the copy ceiling on an H200 (PERFORMANCE.md,
// 2026-12-05), where the fp16 GEMV, with twice the bytes in flight, streams at 90%: at ~4 TB/s and a
// loaded DRAM latency of 1-2 us an SM needs 30-60 KB in flight, and the register ring sits at that
// edge. Here the bytes in flight live in shared memory, filled without any per-lane copy
// instruction: one producer warp asks the copy engine for whole row segments, so a block keeps
// `stages` x 16 rows x `span` inputs in flight (4 x 9.7 KB by default, several blocks an SM), and the
// four consumer warps only read shared memory, dequantize and multiply, as kStream does.
//
// A block takes `tiles_per_block` consecutive 16-row tiles; its items are (tile, span of k) in that
// order, through a ring of `stages` stages. Stage s: rows 0..15 (mma rows: g = r for ra, r - 8 for
// rb of the output policy's rows()) of span inputs, each row's 4-bit words (span / 2 bytes, then 64
// bytes of pad, so that rows g and g + 1, read by one quarter warp, fall on different bank halves),
// then each row's params ({scale, 1024 + zero} of the span's groups; rows 16 bytes apart more than
// their length, so the 8 rows g of one param read fall on 8 banks). Lanes 0-15 of the producer copy
// the weight rows, lanes 16-31 the param rows; barrier full[s] completes when all those bytes have
// landed, empty[s] when the 4 consumer warps have read the stage (one arrival each). Consumer warp
// w takes chunks w, w + 4, ... of each span (128 inputs, lane (g, c) its 32 inputs 32c.. of rows g
// and g + 8), which is kStream's split of k over 4 warps: the same sums in the same order. The
// weights do not depend on the previous kernel, so the first `stages` items are requested before
// the programmatic-launch wait.
//
// kCols = 2 is the same kernel for 9-16 tokens (two n = 8 token columns per dequantized weight: x
// rows g and g + 8), which gemm_w4's variant "bulk16" runs for plain x and y.
//
// Needs sm_90 code (the kernel compiled for compute_90 or later), k a multiple of 4 x group (16-byte
// param segments) and the shared memory; launch_gemv_w4_bulk returns false otherwise, and gemv_w4's
// dispatch runs kStream instead.
#include <algorithm>
#include <atomic>
#include <cstdint>

#include "bulk_copy.cuh"
#include "gemv.cuh"
#include "w4_chunk.cuh"
#include "w4_layout.cuh"

namespace turbine::cuda {

/// kBulk: ring stages per block (W4Launch::stages), at most.
inline constexpr int kW4BulkMaxStages = 8;
/// kBulk: 128-input chunks per consumer warp and stage (W4Launch::chunks), at most.
inline constexpr int kW4BulkMaxChunks = 4;
/// kBulk: 16-row tiles per block (W4Launch::tiles_per_block), at most.
inline constexpr int kW4BulkMaxTiles = 8;

namespace detail {

inline constexpr int kW4bWarps = 4;                        // consumer warps; one more produces
inline constexpr int kW4bThreads = (kW4bWarps + 1) * 32;   // 160
inline constexpr int kW4bBarrierBytes = 2 * kW4BulkMaxStages * 8;

// The byte sizes of a launch's ring, shared by the kernel and the launcher.
struct W4bLayout {
  int span;          // inputs per stage: 128 x 4 warps x chunks
  int row_bytes;     // weight row stride in a stage: span / 2 + 64
  int param_bytes;   // param bytes per row in a stage: span / group x 4
  int param_stride;  // param row stride in a stage: param_bytes + 16
  int stage_bytes;   // 16 x (row_bytes + param_stride)
  __host__ __device__ static W4bLayout of(int chunks, int group_shift) {
    W4bLayout l;
    l.span = 128 * kW4bWarps * chunks;
    l.row_bytes = l.span / 2 + 64;
    l.param_bytes = (l.span >> group_shift) * 4;
    l.param_stride = l.param_bytes + 16;
    l.stage_bytes = 16 * (l.row_bytes + l.param_stride);
    return l;
  }
};

template <int kCols, bool kScaleAfter, class X, class E>
__global__ static void __launch_bounds__(kW4bThreads)
    gemv_w4_bulk_kernel(const uint32_t* __restrict__ qw, const __half2* __restrict__ params, int n, int k,
                        int group_shift, int tokens, int tiles, int tiles_per_block, int stages, int chunks,
                        int x_smem_bytes, const X xs, const E ep) {
  static_assert(kCols == 1 || kCols == 2, "one or two 8-token columns");
  pdl_launch_dependents();
  extern __shared__ __align__(128) unsigned char w4b_smem[];
  uint64_t* const full = reinterpret_cast<uint64_t*>(w4b_smem);
  uint64_t* const empty = full + kW4BulkMaxStages;
  const W4bLayout lay = W4bLayout::of(chunks, group_shift);
  unsigned char* const ring = w4b_smem + kW4bBarrierBytes;
  __half* const staged = reinterpret_cast<__half*>(ring + size_t(stages) * lay.stage_bytes);
  float* const partial = reinterpret_cast<float*>(reinterpret_cast<unsigned char*>(staged) + x_smem_bytes);

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int tile0 = static_cast<int>(blockIdx.x) * tiles_per_block;
  const int ntiles = min(tiles_per_block, tiles - tile0);
  const int spans = (k + lay.span - 1) / lay.span;  // items per tile
  const int items = ntiles * spans;
  const int words = k >> 3, groups = k >> group_shift;
  const bool producer = warp == kW4bWarps;

  if (threadIdx.x == 0) {
    for (int s = 0; s < stages; ++s) {
      bulk::barrier_init(full + s, 1);
      bulk::barrier_init(empty + s, kW4bWarps);  // one arrival per consumer warp
    }
    bulk::fence_init();
  }
  __syncthreads();

  // Producer: item i into stage i % stages, once the consumers released that stage's previous use.
  auto produce = [&](int i) {
    const int s = i % stages, t = i / spans, j = i - t * spans;
    const int k0 = j * lay.span, len = min(lay.span, k - k0);  // a multiple of 4 x group (the launcher checks)
    if (i >= stages) bulk::wait(empty + s, (i / stages - 1) & 1);
    if (lane == 0) bulk::arrive_expect_tx(full + s, 16u * static_cast<uint32_t>(len / 2 + (len >> group_shift) * 4));
    __syncwarp();
    const int r = lane & 15;
    int ra, rb;
    ep.rows(tile0 + t, r & 7, n, ra, rb);
    const int64_t row = r < 8 ? ra : rb;
    unsigned char* const st = ring + size_t(s) * lay.stage_bytes;
    if (lane < 16)
      bulk::copy_g2s(st + r * lay.row_bytes, qw + row * words + (k0 >> 3), static_cast<uint32_t>(len / 2), full + s);
    else
      bulk::copy_g2s(st + 16 * lay.row_bytes + r * lay.param_stride, params + row * groups + (k0 >> group_shift),
                     static_cast<uint32_t>((len >> group_shift) * 4), full + s);
  };
  const int first = min(items, stages);
  if (producer)
    for (int i = 0; i < first; ++i) produce(i);
  pdl_wait();
  xs.template prologue<kW4bThreads>(staged, k, tokens);

  if (producer) {
    for (int i = first; i < items; ++i) produce(i);
  } else {
    const int g = lane >> 2, c = lane & 3;
    // x rows g (column 0) and g + 8 (column 1); rows past the tokens read a valid row and feed zeros.
    const auto xl0 = xs.lane(min(g, tokens - 1), k, 0, staged);
    const auto xl1 = xs.lane(min(g + 8 * (kCols - 1), tokens - 1), k, 0, staged);
    const bool has_x0 = g < tokens, has_x1 = kCols == 2 && g + 8 < tokens;
    const uint4 zero = make_uint4(0, 0, 0, 0);
    float acc[kCols][4], acc1[kCols][4];
#pragma unroll
    for (int col = 0; col < kCols; ++col)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[col][e] = acc1[col][e] = 0.f;
    for (int i = 0; i < items; ++i) {
      const int s = i % stages, t = i / spans, j = i - t * spans;
      const unsigned char* const st = ring + size_t(s) * lay.stage_bytes;
      bulk::wait(full + s, (i / stages) & 1);
      // Read this lane's part of the stage into registers, then release the stage at once.
      uint4 va[kW4BulkMaxChunks], vb[kW4BulkMaxChunks];
      __half2 sa[kW4BulkMaxChunks], sb[kW4BulkMaxChunks];
#pragma unroll
      for (int u = 0; u < kW4BulkMaxChunks; ++u) {
        if (u >= chunks) break;
        const int q = warp + kW4bWarps * u;  // chunk of the span
        const int kk = j * lay.span + q * 128 + 32 * c;
        if (kk < k) {
          va[u] = *reinterpret_cast<const uint4*>(st + g * lay.row_bytes + q * 64 + 16 * c);
          vb[u] = *reinterpret_cast<const uint4*>(st + (g + 8) * lay.row_bytes + q * 64 + 16 * c);
          const int p = ((q * 128 + 32 * c) >> group_shift) * 4;  // a lane's 32 inputs are in one group
          sa[u] = *reinterpret_cast<const __half2*>(st + 16 * lay.row_bytes + g * lay.param_stride + p);
          sb[u] = *reinterpret_cast<const __half2*>(st + 16 * lay.row_bytes + (g + 8) * lay.param_stride + p);
        } else {  // past k: the stage holds stale bytes there; x is zero, the weights only need to be finite
          va[u] = vb[u] = zero;
          sa[u] = sb[u] = __half2{};
        }
      }
      __syncwarp();  // the warp's reads of the stage are done (and ordered before lane 0's release)
      if (lane == 0) bulk::arrive(empty + s);
#pragma unroll
      for (int u = 0; u < kW4BulkMaxChunks; ++u) {
        if (u >= chunks) break;
        const int kk = j * lay.span + (warp + kW4bWarps * u) * 128 + 32 * c;
        const bool in_k = kk < k;
        w4_chunk_mma<kCols, kScaleAfter>(va[u], vb[u], sa[u], sb[u], xl0, xl1, has_x0 && in_k, has_x1 && in_k, kk, acc,
                                         acc1);
      }
      if (j == spans - 1) {  // this warp's share of tile t is done: [tile][warp][col][4][32]
#pragma unroll
        for (int col = 0; col < kCols; ++col) {
          float* p = partial + ((t * kW4bWarps + warp) * kCols + col) * 128 + lane;
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            p[e * 32] = acc[col][e] + acc1[col][e];
            acc[col][e] = acc1[col][e] = 0.f;
          }
        }
      }
    }
  }
  __syncthreads();
  // As kStream's end: a thread finishes rows g and g + 8 of one token (i steps by whole warps).
  for (int i = threadIdx.x; i < ntiles * 64 * kCols; i += kW4bThreads) {
    const int t = i / (64 * kCols), col = (i / 64) % kCols, j = (i >> 5) & 1, l = i & 31;
    float s0 = 0.f, s1 = 0.f;
#pragma unroll
    for (int q = 0; q < kW4bWarps; ++q) {
      const float* p = partial + ((t * kW4bWarps + q) * kCols + col) * 128 + l;
      s0 += p[j * 32];
      s1 += p[(j + 2) * 32];
    }
    gemv_epilogue(ep, tile0 + t, l >> 2, 8 * col + 2 * (l & 3) + j, tokens, s0, s1, n);
  }
}

// Per device, what the kBulk launcher asks the driver once: SMs, the opt-in shared-memory limit.
struct W4bDevice {
  int sms = 0, smem_optin = 0, smem_per_sm = 0;
};
inline W4bDevice w4b_device() {
  // sms (12 bits) | opt-in per block (bytes / 16, 16 bits) | per SM (bytes / 16, 16 bits) | 1 = asked
  static std::atomic<uint64_t> cached[64];
  int dev = 0;
  TURBINE_CUDA_CHECK(cudaGetDevice(&dev));
  uint64_t v = cached[dev & 63].load(std::memory_order_relaxed);
  if (v == 0) {
    int sms = 0, optin = 0, per_sm = 0;
    TURBINE_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    TURBINE_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    TURBINE_CUDA_CHECK(cudaDeviceGetAttribute(&per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, dev));
    v = (uint64_t(sms & 0xfff) << 33) | (uint64_t((optin / 16) & 0xffff) << 17) | (uint64_t((per_sm / 16) & 0xffff) << 1) | 1;
    cached[dev & 63].store(v, std::memory_order_relaxed);
  }
  return {int((v >> 33) & 0xfff), int(((v >> 17) & 0xffff) * 16), int(((v >> 1) & 0xffff) * 16)};
}

// Per kernel instantiation and device: whether the code that runs was compiled for sm_90 or later
// (a library built for sm_80 JIT-compiles compute_80 PTX, whose copy wrappers trap), and its static
// shared memory. 0: not asked yet.
template <auto kKernel>
struct W4bKernelInfo {
  bool sm90 = false;
  int static_smem = 0;
  static W4bKernelInfo get() {
    static std::atomic<int64_t> cached[64];
    int dev = 0;
    TURBINE_CUDA_CHECK(cudaGetDevice(&dev));
    int64_t v = cached[dev & 63].load(std::memory_order_relaxed);
    if (v == 0) {
      cudaFuncAttributes attr{};
      TURBINE_CUDA_CHECK(cudaFuncGetAttributes(&attr, kKernel));
      v = (int64_t(attr.sharedSizeBytes) << 2) | (attr.ptxVersion >= 90 ? 2 : 0) | 1;
      cached[dev & 63].store(v, std::memory_order_relaxed);
    }
    return {(v & 2) != 0, static_cast<int>(v >> 2)};
  }
};

/// Whether kBulk's layout takes this matrix (the device and the shared memory are checked at launch).
inline bool w4_bulk_shape_ok(const W4Matrix& w) { return w.k % (4 * w.group) == 0 && aligned16(w.params); }

/// Launches kBulk with kCols 8-token columns (tokens <= 8 kCols): stages and chunks (0: 4 and 2),
/// tiles_per_block (0: the fewest that fit the grid into one wave of resident blocks, at most
/// kW4BulkMaxTiles). Returns false, launching nothing, where kBulk cannot run (see the top).
template <int kCols, bool kScaleAfter, class X, class E>
bool launch_gemv_w4_bulk(const W4Matrix& w, int tokens, int stages, int chunks, int tiles_per_block, const X& x,
                         const E& e, cudaStream_t stream, bool pdl) {
  constexpr auto kernel = gemv_w4_bulk_kernel<kCols, kScaleAfter, X, E>;
  if (stages == 0) stages = 4;
  if (chunks == 0) chunks = 2;
  check(stages >= 2 && stages <= kW4BulkMaxStages, "gemv_w4: ", stages, " bulk stages is not supported (2 to ",
        kW4BulkMaxStages, ")");
  check(chunks >= 1 && chunks <= kW4BulkMaxChunks, "gemv_w4: ", chunks, " bulk chunks per warp is not supported (1 to ",
        kW4BulkMaxChunks, ")");
  check(tiles_per_block >= 0 && tiles_per_block <= kW4BulkMaxTiles, "gemv_w4: ", tiles_per_block,
        " bulk tiles per block is not supported (1 to ", kW4BulkMaxTiles, ")");
  check(tokens >= 1 && tokens <= 8 * kCols, "gemv_w4 bulk: ", tokens, " tokens for ", kCols, " columns");
  if (!w4_bulk_shape_ok(w)) return false;
  const W4bKernelInfo info = W4bKernelInfo<kernel>::get();
  if (!info.sm90) return false;
  const W4bDevice dev = w4b_device();
  const int group_shift = w.group == 32 ? 5 : w.group == 64 ? 6 : 7;
  const W4bLayout lay = W4bLayout::of(chunks, group_shift);
  const int tiles = static_cast<int>(ceil_div(w.n, kGemvRows));
  const size_t x_smem = (X::smem_bytes(tokens, w.k) + 15) / 16 * 16;
  auto smem_of = [&](int tpb) {
    return size_t(kW4bBarrierBytes) + size_t(stages) * lay.stage_bytes + x_smem +
           size_t(tpb) * kW4bWarps * kCols * 128 * sizeof(float);
  };
  const size_t most = size_t(dev.smem_optin) - size_t(info.static_smem);
  if (smem_of(std::max(tiles_per_block, 1)) > most) return false;  // too deep a ring for this x: kStream
  int tpb = tiles_per_block;
  if (tpb == 0) {
    // Blocks per SM from the registers, threads and shared memory (here without the driver: the
    // kernel's registers do not change per launch and the per-launch occupancy query costs host time).
    static std::atomic<int> regs_of[64];
    int d = 0;
    TURBINE_CUDA_CHECK(cudaGetDevice(&d));
    int regs = regs_of[d & 63].load(std::memory_order_relaxed);
    if (regs == 0) {
      cudaFuncAttributes attr{};
      TURBINE_CUDA_CHECK(cudaFuncGetAttributes(&attr, kernel));
      regs = std::max(attr.numRegs, 1);
      regs_of[d & 63].store(regs, std::memory_order_relaxed);
    }
    const int by_regs = 65536 / (((regs + 7) / 8 * 8) * kW4bThreads), by_threads = 2048 / kW4bThreads;
    tpb = 1;
    while (tpb < kW4BulkMaxTiles) {  // the fewest tiles per block whose blocks all fit at once
      const size_t smem = smem_of(tpb) + size_t(info.static_smem) + 1024;  // 1 KB reserved per block
      const int per_sm = std::max(1, std::min({by_regs, by_threads, static_cast<int>(size_t(dev.smem_per_sm) / smem)}));
      if (ceil_div(tiles, tpb) <= int64_t(per_sm) * dev.sms || smem_of(tpb + 1) > most) break;
      ++tpb;
    }
  }
  const size_t smem = smem_of(tpb);
  w4_allow_smem<kernel>(smem, tokens, w.k);
  launch_kernel(kernel, dim3(static_cast<unsigned>(ceil_div(tiles, tpb))), dim3(kW4bThreads), smem, stream, pdl,
                w.qweight, w.params, w.n, w.k, group_shift, tokens, tiles, tpb, stages, chunks, static_cast<int>(x_smem),
                x, e);
  return true;
}

}  // namespace detail
}  // namespace turbine::cuda
