// CUDA kernels at SmolLM2-135M and Llama-3-8B shapes, bf16. Memory-bound kernels report the bytes
// that must move per call (each input read once, each output written once) per second and the
// fraction of a device-to-device copy ceiling (the larger of cudaMemcpy and a copy kernel) and of a
// read-only stream; GEMMs report TFLOP/s and the fraction of a large cuBLASLt GEMM. The ceilings are
// measured at start-up in the same run.
//
// GEMVs launch with programmatic dependent launch (the next one streams weights during the tail
// of the previous one), as in decode; gemv_no_pdl shows the difference.
// Timing: each benchmark captures `reps` calls in a CUDA graph (no launch gaps from the host),
// warms up, then times graph replays with CUDA events; counters use the median per-call time.
// Inputs are random (never zeros); weights rotate over enough copies to defeat the 50 MB L2.
#include <benchmark/benchmark.h>

#include "cuda_bench_common.cuh"
#include "cuda_gbench_main.cuh"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <turbine/backend/cuda/activation.cuh>
#include <turbine/backend/cuda/embedding.cuh>
#include <turbine/backend/cuda/gemm.cuh>
#include <turbine/backend/cuda/gemv.cuh>
#include <turbine/backend/cuda/gemv_fused.cuh>
#include <turbine/backend/cuda/gemm_w4.cuh>
#include <turbine/backend/cuda/gemv_w4.cuh>
#include <turbine/backend/cuda/norm.cuh>
#include <turbine/backend/cuda/rope.cuh>
#include <vector>

using namespace turbine;
using namespace turbine::cuda;
using namespace turbine::bench;
using bf = __nv_bfloat16;

namespace {

// ---- random device data (beyond cuda_bench_common.cuh) ----------------------------------------

__global__ void fill_ids_kernel(int32_t* p, size_t n, uint64_t seed, int vocab) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    p[i] = static_cast<int32_t>(mix(i + seed) % static_cast<uint32_t>(vocab));
}

__global__ void fill_bits_kernel(uint32_t* p, size_t n, uint64_t seed) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    p[i] = mix(i * 0x9e3779b97f4a7c15ull + seed);
}

// W4 params {scale, 1024 + zero}: scales around 0.01, zeros 0..15.
__global__ void fill_w4_params_kernel(__half2* p, size_t n, uint64_t seed) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const uint32_t r = mix(i + seed);
    p[i] = __halves2half2(__float2half(0.005f + 0.01f * float(r >> 8) / 16777216.0f), __float2half(1024.0f + float(r & 15)));
  }
}

DeviceBuffer<int32_t> random_ids(size_t n, int vocab) {
  DeviceBuffer<int32_t> b(n, "ids");
  fill_ids_kernel<<<64, 256>>>(b.data(), n, next_seed(), vocab);
  TURBINE_CUDA_CHECK(cudaGetLastError());
  return b;
}

// ---- ceilings and the summary table -------------------------------------------------------------

MemoryCeilings g_mem;      // copy, cudaMemcpy, copy kernel, read-only stream (GB/s)
double g_gemm_tflops = 0;  // 8192^3 bf16 cuBLASLt

struct Row {
  std::string name;
  double us = 0, rate = 0, fraction = 0, fraction_read = 0;
  bool flops = false;
};
std::vector<std::string> g_order;
std::map<std::string, Row> g_rows;
std::string g_current;  // name of the running benchmark (State::name() is not in every version)

void record(benchmark::State& state, const std::vector<double>& samples, double bytes, double flop) {
  const double t = median(samples);
  Row r;
  r.name = g_current;
  r.us = t * 1e6;
  if (flop > 0) {
    r.flops = true;
    r.rate = flop / t * 1e-12;
    r.fraction = r.rate / g_gemm_tflops;
    state.counters["TFLOPs"] = r.rate;
    state.counters["frac_gemm_ceiling"] = r.fraction;
  } else {
    r.rate = bytes / t * 1e-9;
    r.fraction = r.rate / g_mem.copy_gbps;
    r.fraction_read = r.rate / g_mem.read_gbps;
    state.counters["frac_read_ceiling"] = r.fraction_read;
    state.counters["GBps"] = r.rate;
    state.counters["frac_copy_ceiling"] = r.fraction;
  }
  state.counters["median_us"] = r.us;
  if (!g_rows.count(r.name)) g_order.push_back(r.name);
  g_rows[r.name] = r;  // the last (longest) run of a benchmark wins
}

/// Times `timer` inside the benchmark loop and records the median.
void run(benchmark::State& state, GraphTimer& timer, double bytes, double flop = 0) {
  std::vector<double> samples;
  for (auto _ : state) {
    const double t = timer.time();
    samples.push_back(t);
    state.SetIterationTime(t);
  }
  record(state, samples, bytes, flop);
}

void measure_ceilings() {
  if (std::getenv("TURBINE_BENCH_NO_CEILINGS")) {  // under a profiler: only the benchmarks' own kernels
    std::printf("ceilings: not measured (TURBINE_BENCH_NO_CEILINGS); the fractions below mean nothing\n");
    g_mem.copy_gbps = g_mem.read_gbps = g_gemm_tflops = 1.0;
    return;
  }
  measure_and_print_ceilings(g_mem, g_gemm_tflops);
}

void print_table() {
  std::printf("\n%-56s %10s %14s %8s %8s\n", "benchmark (bf16)", "median us", "rate", "of copy", "of read");
  std::printf("%-56s %10s %9.0f GB/s\n", "ceiling: cudaMemcpy D2D 1 GiB (read + write)", "", g_mem.memcpy_gbps);
  std::printf("%-56s %10s %9.0f GB/s\n", "ceiling: copy kernel 1 GiB (read + write)", "", g_mem.kcopy_gbps);
  std::printf("%-56s %10s %9.0f GB/s\n", "ceiling: read-only stream 1 GiB", "", g_mem.read_gbps);
  std::printf("%-56s %10s %6.0f TFLOP/s\n", "ceiling: 8192^3 cuBLASLt bf16 GEMM", "", g_gemm_tflops);
  for (const auto& name : g_order) {
    const Row& r = g_rows[name];
    if (r.flops)
      std::printf("%-56s %10.2f %6.1f TFLOP/s %8.3f\n", r.name.c_str(), r.us, r.rate, r.fraction);
    else
      std::printf("%-56s %10.2f %9.0f GB/s %8.3f %8.3f\n", r.name.c_str(), r.us, r.rate, r.fraction, r.fraction_read);
  }
}

// ---- shapes -------------------------------------------------------------------------------------

struct Model {
  const char* name;
  int hidden, inter, heads, kv_heads, head_dim, vocab;
};
constexpr Model kSmol{"smollm2", 576, 1536, 9, 3, 64, 49152};
constexpr Model kLlama{"llama3_8b", 4096, 14336, 32, 8, 128, 128256};

// ---- benchmarks ---------------------------------------------------------------------------------

void BM_rms_norm(benchmark::State& state, Model m, int tokens, bool add) {
  const size_t n = size_t(tokens) * m.hidden;
  const int copies = copies_for(n * 12);
  std::vector<DeviceBuffer<float>> res;
  std::vector<DeviceBuffer<bf>> delta, y;
  for (int i = 0; i < copies; ++i) {
    res.push_back(random_buffer<float>(n, 4.f));
    delta.push_back(random_buffer<bf>(n));
    y.emplace_back(n);
  }
  auto gamma = random_buffer<bf>(m.hidden);
  GraphTimer timer(std::max(copies, 20), [&](int i, cudaStream_t s) {
    const int c = i % copies;
    if (add)
      add_rms_norm(res[c].data(), delta[c].data(), gamma.data(), y[c].data(), tokens, m.hidden, 1e-5f, s);
    else
      rms_norm(res[c].data(), gamma.data(), y[c].data(), tokens, m.hidden, 1e-5f, s);
  });
  // fp32 residual read (+ bf16 delta read + fp32 residual write), bf16 y write, gamma.
  const double bytes = double(n) * (add ? 4 + 2 + 4 + 2 : 4 + 2) + 2.0 * m.hidden;
  run(state, timer, bytes);
}

void BM_embedding(benchmark::State& state, Model m, int tokens) {
  auto table = random_buffer<bf>(size_t(m.vocab) * m.hidden);
  auto ids = random_ids(tokens, m.vocab);
  DeviceBuffer<float> out(size_t(tokens) * m.hidden);
  GraphTimer timer(
      20, [&](int, cudaStream_t s) { embedding(table.data(), ids.data(), out.data(), tokens, m.hidden, m.vocab, s); });
  run(state, timer, double(tokens) * m.hidden * (2 + 4) + 4.0 * tokens);
}

void BM_silu_mul(benchmark::State& state, Model m, int tokens) {
  const size_t n = size_t(tokens) * m.inter;
  const int copies = copies_for(n * 6);
  std::vector<DeviceBuffer<bf>> gu, out;
  for (int i = 0; i < copies; ++i) {
    gu.push_back(random_buffer<bf>(2 * n, 4.f));
    out.emplace_back(n);
  }
  GraphTimer timer(std::max(copies, 20), [&](int i, cudaStream_t s) {
    silu_mul_fused(gu[i % copies].data(), out[i % copies].data(), tokens, m.inter, s);
  });
  run(state, timer, double(n) * (2 + 2 + 2));
}

void BM_rope_qkv(benchmark::State& state, Model m, int tokens) {
  const int hd = m.head_dim, row = (m.heads + 2 * m.kv_heads) * hd, kvd = m.kv_heads * hd;
  const size_t n = size_t(tokens) * row;
  const int copies = copies_for(n * 4);
  constexpr int kCache = 8192;
  std::vector<DeviceBuffer<bf>> qkv;
  for (int i = 0; i < copies; ++i) qkv.push_back(random_buffer<bf>(n));
  DeviceBuffer<bf> kc(size_t(kCache) * kvd), vc(size_t(kCache) * kvd);
  std::vector<float> inv(hd / 2);
  for (int i = 0; i < hd / 2; ++i) inv[i] = 1.0f / std::pow(500000.f, 2.0f * i / hd);
  DeviceBuffer<float> d_inv(inv.size());
  TURBINE_CUDA_CHECK(cudaMemcpy(d_inv.data(), inv.data(), d_inv.bytes(), cudaMemcpyHostToDevice));
  GraphTimer timer(std::max(copies, 20), [&](int i, cudaStream_t s) {
    RopeQkv<bf> p;
    bf* base = qkv[i % copies].data();
    p.q = base;
    p.k = base + m.heads * hd;
    p.v = base + m.heads * hd + kvd;
    p.q_stride = p.k_stride = p.v_stride = row;
    p.k_cache = kc.data();
    p.v_cache = vc.data();
    p.inv_freq = d_inv.data();
    p.tokens = tokens;
    p.heads = m.heads;
    p.kv_heads = m.kv_heads;
    p.head_dim = hd;
    p.pos0 = tokens == 1 ? 4000 : 0;
    p.cache_positions = kCache;
    rope_qkv(p, s);
  });
  run(state, timer, double(n) * 2 * 2);  // q, k, v read once; q, k_cache, v_cache written once
}

enum class Mv { Gemv, GemvNoPdl, Cublas };

void BM_matvec(benchmark::State& state, int n, int k, int tokens, Mv impl) {
  const size_t wbytes = size_t(n) * k * 2;
  const int copies = copies_for(wbytes);
  std::vector<DeviceBuffer<bf>> w;
  for (int i = 0; i < copies; ++i) w.push_back(random_buffer<bf>(size_t(n) * k, 0.05f));
  auto x = random_buffer<bf>(size_t(tokens) * k);
  DeviceBuffer<bf> y(size_t(tokens) * n);
  Gemm& gemm = shared_gemm();
  GraphTimer timer(std::max(copies, 8), [&](int i, cudaStream_t s) {
    if (impl != Mv::Cublas)
      gemv(w[i % copies].data(), x.data(), static_cast<const bf*>(nullptr), y.data(), tokens, n, k, s,
           impl == Mv::Gemv);
    else
      gemm(x.data(), w[i % copies].data(), static_cast<const bf*>(nullptr), y.data(), tokens, n, k, s);
  });
  run(state, timer, double(wbytes) + 2.0 * tokens * (k + n));
}

// The GEMV kernel with other (warps per block, k chunks per step) than the launcher picks, 1 token.
template <int kWarps, int kUnroll>
void BM_gemv_variant(benchmark::State& state, int n, int k) {
  const size_t wbytes = size_t(n) * k * 2;
  const int copies = copies_for(wbytes);
  std::vector<DeviceBuffer<bf>> w;
  for (int i = 0; i < copies; ++i) w.push_back(random_buffer<bf>(size_t(n) * k, 0.05f));
  auto x = random_buffer<bf>(k);
  DeviceBuffer<bf> y(n);
  GraphTimer timer(std::max(copies, 8), [&](int i, cudaStream_t s) {
    turbine::cuda::detail::launch_gemv_kernel<bf, kWarps, kUnroll>(w[i % copies].data(), x.data(), nullptr, y.data(), 1,
                                                                   n, k, s, true);
  });
  run(state, timer, double(wbytes) + 2.0 * (k + n));
}

// Copies of a random 4-bit matrix (group-wise params) to rotate over, enough to defeat the L2.
struct W4Copies {
  std::vector<DeviceBuffer<uint32_t>> q;
  std::vector<DeviceBuffer<__half2>> p;
  int copies = 0;
  size_t bytes = 0;  // one copy, packed weights + params
  W4Copies(int n, int k, int group) {
    const size_t words = size_t(n) * k / 8, params = size_t(n) * (k / group);
    bytes = words * 4 + params * 4;
    copies = copies_for(bytes);
    for (int i = 0; i < copies; ++i) {
      q.emplace_back(words, "w4 qweight");
      p.emplace_back(params, "w4 params");
      fill_bits_kernel<<<1024, 256>>>(q.back().data(), words, next_seed());
      fill_w4_params_kernel<<<1024, 256>>>(p.back().data(), params, next_seed());
      TURBINE_CUDA_CHECK(cudaGetLastError());
    }
  }
};

// The read ceiling at one Linear's size: the packed weights of W4Copies(n, k, 128) (not their
// params, 1/16 more) streamed by the read-only kernel of the 1 GiB ceiling, one launch per call in
// the same kind of graph as the GEMV (copies rotated past L2), so that a small GEMV's fraction can
// be read against what one launch of that size reaches on its own (launch, ramp-up and tail
// included, no programmatic-launch overlap), not only against the 1 GiB stream. Each thread issues
// its four 16-byte loads at once (the grid covers the bytes in one pass).
void BM_read_at_size(benchmark::State& state, int n, int k) {
  const W4Copies w(n, k, 128);
  const size_t vecs = w.q[0].size() / 4;  // 16-byte vectors of one copy's packed words
  DeviceBuffer<uint32_t> sink(1);
  const unsigned blocks = static_cast<unsigned>(std::max<size_t>(1, ceil_div(vecs, size_t(4) * 512)));
  GraphTimer timer(std::max(w.copies, 8), [&](int i, cudaStream_t s) {
    read_kernel<<<blocks, 512, 0, s>>>(reinterpret_cast<const uint4*>(w.q[i % w.copies].data()), vecs, sink.data());
    TURBINE_CUDA_CHECK(cudaGetLastError());
  });
  run(state, timer, double(vecs) * 16.0);
}

// The W4 GEMV's load schedule without its arithmetic: the kStream kernel's grid (the shape gemv_w4
// picks), its 16-row tiles, its chunks per warp and its ring of kW4Depth 16-byte loads of two rows
// plus their params, the first ring before the programmatic-launch wait, but each chunk only
// XOR-folded into a register (one store a block, so that no load is dead). The GEMV's ~120
// registers a lane allow 16 warps an SM; this kernel needs fewer, so dynamic shared memory holds it
// to the same 16 (two launches then overlap as little as the GEMV's do). Against
// ceiling/read_at_w4_size (the packed weights alone, in one sequential pass: compare GB/s) it says how much of the GEMV's
// loss is the schedule; against gemv_w4_g128, how much is the arithmetic, the reduction and the
// epilogue. kXMode: each chunk also reads its x after the wait (one token, x as stored), folded in
// the same way, from where the mode says: 1 ld.global.nc per chunk (as GemvX), 2 plain ld.global
// per chunk, 3 ld.global.cg (L2 only) per chunk, 4 the whole of x copied into shared memory by
// the copy engine (cp.async.bulk + mbarrier, as GemvXBulk) and read from there. kWithSync: and
// the block meets at a barrier before its store, as the GEMV's cross-warp sums do. Together they
// time the GEMV's serial path after the wait without its arithmetic.
enum XMode { kNoX = 0, kXNc = 1, kXPlain = 2, kXCg = 3, kXBulk = 4 };
template <XMode kMode>
__device__ __forceinline__ uint4 probe_x(const __half* p) {
  uint4 r{};
  if constexpr (kMode == kXNc) return turbine::cuda::vec::load_nc(p);
  if constexpr (kMode == kXPlain)
    asm volatile("ld.global.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w) : "l"(p));
  if constexpr (kMode == kXCg)
    asm volatile("ld.global.cg.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w) : "l"(p));
  if constexpr (kMode == kXBulk) r = *reinterpret_cast<const uint4*>(p);
  return r;
}
template <int kWarps, XMode kXMode = kNoX, bool kWithSync = false>
__global__ void __launch_bounds__(kWarps * 32)
    w4_schedule_kernel(const uint32_t* __restrict__ qw, const __half2* __restrict__ params, int n, int k, int tiles,
                       int tiles_per_block, uint32_t* sink, const __half* x) {
  turbine::cuda::pdl_launch_dependents();
  constexpr int kDepth = turbine::cuda::detail::kW4Depth;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, c = lane & 3;
  const int words = k >> 3, groups = k >> 7, chunks = (k + 127) >> 7;
  const int tile0 = static_cast<int>(blockIdx.x) * tiles_per_block;
  const int ntiles = min(tiles_per_block, tiles - tile0);
  const int per_tile = warp < chunks ? (chunks - 1 - warp) / kWarps + 1 : 0;
  const int items = ntiles * per_tile;
  int lt = 0, lc = warp, ra = 0, rb = 0;
  auto point = [&](int t) {
    ra = min((tile0 + t) * 16 + g, n - 1);
    rb = min((tile0 + t) * 16 + g + 8, n - 1);
  };
  uint4 va[kDepth], vb[kDepth];
  uint32_t pa[kDepth], pb[kDepth];
  auto load = [&](int slot) {
    const int kk = lc * 128 + 32 * c;
    va[slot] = turbine::cuda::vec::load_stream(qw + int64_t(ra) * words + lc * 16 + 4 * c);
    vb[slot] = turbine::cuda::vec::load_stream(qw + int64_t(rb) * words + lc * 16 + 4 * c);
    pa[slot] = __ldg(reinterpret_cast<const uint32_t*>(params) + int64_t(ra) * groups + (kk >> 7));
    pb[slot] = __ldg(reinterpret_cast<const uint32_t*>(params) + int64_t(rb) * groups + (kk >> 7));
    lc += kWarps;
    if (lc >= chunks) {
      lc = warp;
      if (++lt < ntiles) point(lt);
    }
  };
  if (items > 0) point(0);
#pragma unroll
  for (int slot = 0; slot < kDepth; ++slot)
    if (slot < items) load(slot);
  turbine::cuda::pdl_wait();
  extern __shared__ uint4 probe_smem[];
  if constexpr (kXMode == kXBulk) {
    const turbine::cuda::detail::GemvXBulk<__half> bulk_x{x};
    bulk_x.start(reinterpret_cast<__half*>(probe_smem), k, 1);
    bulk_x.prologue<kWarps * 32>(reinterpret_cast<__half*>(probe_smem), k, 1);
    x = reinterpret_cast<const __half*>(probe_smem);
  }
  uint32_t acc = 0;
  int cc = warp;  // the computing cursor's chunk (x is the same for every tile)
  for (int base = 0; base < items; base += kDepth) {
#pragma unroll
    for (int slot = 0; slot < kDepth; ++slot) {
      if (base + slot >= items) break;
      acc ^= va[slot].x ^ va[slot].y ^ va[slot].z ^ va[slot].w ^ vb[slot].x ^ vb[slot].y ^ vb[slot].z ^ vb[slot].w ^
             pa[slot] ^ pb[slot];
      if constexpr (kXMode != kNoX) {
        const int kk = cc * 128 + 32 * c;
        if (kk < k)
#pragma unroll
          for (int jj = 0; jj < 4; ++jj) {
            const uint4 xv = probe_x<kXMode>(x + kk + 8 * jj);
            acc ^= xv.x ^ xv.y ^ xv.z ^ xv.w;
          }
        cc += kWarps;
        if (cc >= chunks) cc = warp;
      }
      if (base + slot + kDepth < items) load(slot);
    }
  }
  if constexpr (kWithSync) __syncthreads();
  if (acc == 0x9e3779b9u) sink[blockIdx.x] = acc;  // (almost) never true, but the compiler cannot know
}

template <XMode kXMode = kNoX, bool kWithSync = false>
void BM_w4_schedule(benchmark::State& state, int n, int k) {
  const W4Copies w(n, k, 128);
  auto x = random_buffer<__half>(size_t(k));
  const int tiles = static_cast<int>(ceil_div(n, 16));
  const std::pair<int, int> pick =
      turbine::cuda::detail::w4_stream_shape(tiles, turbine::cuda::device_sm_count());  // gemv_w4's own
  const unsigned blocks = static_cast<unsigned>(ceil_div(tiles, pick.second));
  DeviceBuffer<uint32_t> sink(blocks);
  const auto kernel =
      pick.first == 8 ? w4_schedule_kernel<8, kXMode, kWithSync> : w4_schedule_kernel<4, kXMode, kWithSync>;
  // 16 warps an SM: 2 blocks of 8 warps or 4 of 4 in the SM's shared memory, not one more
  int smem_per_sm = 0;
  TURBINE_CUDA_CHECK(cudaDeviceGetAttribute(&smem_per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, 0));
  const int per_sm = 16 / pick.first;
  const size_t smem = size_t(smem_per_sm / (per_sm + 1) + 2048);
  TURBINE_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  const bool pdl = turbine::cuda::pdl_available();
  GraphTimer timer(std::max(w.copies, 8), [&](int i, cudaStream_t s) {
    turbine::cuda::launch_kernel(kernel, dim3(blocks), dim3(pick.first * 32), smem, s, pdl,
                                 w.q[i % w.copies].data(), w.p[i % w.copies].data(), n, k, tiles, pick.second,
                                 sink.data(), static_cast<const __half*>(x.data()));
    TURBINE_CUDA_CHECK(cudaGetLastError());
  });
  run(state, timer, double(w.bytes));
}

// The W4 GEMM's load schedule without its arithmetic: the staged kernel's grid at 64 tokens (128
// rows a block, k split as w4_k_split splits it for gemm_w4s<2, 4, 2, 4>, 2 blocks an SM), each
// block streaming its rows' weights and params, and with kWithX the 64 tokens' x, through a ring of
// kStages cp.async stages of kStageK inputs (a stage: 128 rows x kStageK / 2 bytes of weights), one
// barrier a stage, and no mma: each thread only XOR-folds a word of the stage it waited for. With
// kStageK = 128 and kStages = 4 it moves what gemm_w4s moves, in the order it moves it; against
// gemm_w4_g128 at 64 tokens it says whether the GEMM waits on its loads or on its arithmetic, and
// kStageK 256 / 512 say whether 64-byte pieces of a row (the GEMM's stage) read slower from DRAM
// than longer ones.
template <int kStageK, int kStages, bool kWithX>
__global__ void __launch_bounds__(256)
    w4_gemm_schedule_kernel(const uint32_t* __restrict__ qw, const __half2* __restrict__ params,
                            const __half* __restrict__ x, int n, int k, int k_split, uint32_t* sink) {
  constexpr int kRows = 128, kTokens = 64, kThreads = 256;
  constexpr int kWBytes = kRows * kStageK / 2, kPBytes = kRows * (kStageK / 128) * 4;
  constexpr int kXBytes = kWithX ? kTokens * kStageK * 2 : 0;
  constexpr int kStageBytes = kWBytes + kPBytes + kXBytes;
  extern __shared__ __align__(16) unsigned char gemm_probe_smem[];
  const int tid = threadIdx.x;
  const int row0 = blockIdx.x * kRows;
  const int kbeg = blockIdx.z * k_split, kend = min(k, kbeg + k_split);
  const int steps = (kend - kbeg + kStageK - 1) / kStageK;
  const int words = k / 8, groups = k / 128;
  using turbine::cuda::cp_async16;
  using turbine::cuda::cp_async4;
  auto issue = [&](int slot, int step) {
    unsigned char* const st = gemm_probe_smem + slot * kStageBytes;
    const int kc = kbeg + step * kStageK;
    // weights: kRows rows x kStageK / 32 16-byte vectors, consecutive threads along a row
    constexpr int kVecsPerRow = kStageK / 32;
#pragma unroll
    for (int q = 0; q < kRows * kVecsPerRow / kThreads; ++q) {
      const int v = tid + kThreads * q, r = v / kVecsPerRow, u = v % kVecsPerRow;
      const int row = min(row0 + r, n - 1);
      cp_async16(turbine::cuda::smem_u32(st + 16 * v), qw + int64_t(row) * words + kc / 8 + 4 * u, true);
    }
    constexpr int kGroupsPerStage = kStageK / 128;
    for (int v = tid; v < kRows * kGroupsPerStage; v += kThreads) {
      const int r = v / kGroupsPerStage, gi = v % kGroupsPerStage, row = min(row0 + r, n - 1);
      cp_async4(turbine::cuda::smem_u32(st + kWBytes + 4 * v), params + int64_t(row) * groups + kc / 128 + gi,
                true);
    }
    if constexpr (kWithX) {
      constexpr int kUnits = kStageK / 8;
#pragma unroll
      for (int q = 0; q < kTokens * kUnits / kThreads; ++q) {
        const int v = tid + kThreads * q, r = v / kUnits, u = v % kUnits;
        cp_async16(turbine::cuda::smem_u32(st + kWBytes + kPBytes + 16 * v), x + int64_t(r) * k + kc + 8 * u,
                   true);
      }
    }
  };
  uint32_t acc = 0;
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < steps) issue(s, s);
    turbine::cuda::cp_async_commit();
  }
  for (int i = 0; i < steps; ++i) {
    turbine::cuda::cp_async_wait<kStages - 2>();
    __syncthreads();
    if (i + kStages - 1 < steps) issue((i + kStages - 1) % kStages, i + kStages - 1);
    turbine::cuda::cp_async_commit();
    acc ^= reinterpret_cast<const uint32_t*>(gemm_probe_smem + (i % kStages) * kStageBytes)[tid];
  }
  if (acc == 0x9e3779b9u) sink[blockIdx.x] = acc;  // (almost) never true, but the compiler cannot know
}

template <int kStageK, int kStages, bool kWithX>
void BM_w4_gemm_schedule(benchmark::State& state, int n, int k) {
  constexpr int kTokens = 64;
  const W4Copies w(n, k, 128);
  auto x = random_buffer<__half>(size_t(kTokens) * k);
  int sms = 0, smem_per_sm = 0;
  TURBINE_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  TURBINE_CUDA_CHECK(cudaDeviceGetAttribute(&smem_per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, 0));
  // gemm_w4s<2, 4, 2, 4>'s split at 64 tokens: its grid rule (w4_k_split, 2 blocks an SM, at
  // least kW4sMinChunks chunks a split), then the split rounded to whole stages
  const int64_t row_blocks = ceil_div(n, 128);
  const auto& ws = turbine::cuda::detail::w4g_workspace();
  const auto split = turbine::cuda::detail::w4_k_split(k, n, kTokens, row_blocks, int64_t(sms) * 2, 128,
                                                       turbine::cuda::detail::kW4sMinChunks, ws);
  const int k_split = static_cast<int>(ceil_div(ceil_div(k, split.splits), kStageK) * kStageK);
  const unsigned splits = static_cast<unsigned>(ceil_div(k, k_split));
  constexpr size_t kStageBytes =
      size_t(128) * kStageK / 2 + size_t(128) * (kStageK / 128) * 4 + (kWithX ? size_t(kTokens) * kStageK * 2 : 0);
  // two blocks an SM, as the GEMM (its shared memory holds it to two)
  const size_t smem = std::max(kStages * kStageBytes, size_t(smem_per_sm / 3 + 1024));
  const auto kernel = w4_gemm_schedule_kernel<kStageK, kStages, kWithX>;
  TURBINE_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  DeviceBuffer<uint32_t> sink{static_cast<size_t>(row_blocks)};
  GraphTimer timer(std::max(w.copies, 8), [&](int i, cudaStream_t s) {
    turbine::cuda::launch_kernel(kernel, dim3(static_cast<unsigned>(row_blocks), 1, splits), dim3(256), smem, s, false,
                                 w.q[i % w.copies].data(), w.p[i % w.copies].data(),
                                 static_cast<const __half*>(x.data()), n, k, k_split, sink.data());
    TURBINE_CUDA_CHECK(cudaGetLastError());
  });
  run(state, timer, double(w.bytes));
  state.counters["splits"] = splits;
}

// W4A16 GEMV (4-bit weights, group 128, fp16 activations) through `fn`: bytes are the packed
// weights and their scales/zeros, which is what it must stream.
using W4GemvFn = std::function<void(const W4Matrix&, const __half*, __half*, int, cudaStream_t)>;
void BM_gemv_w4_with(benchmark::State& state, int n, int k, int tokens, const W4GemvFn& fn) {
  constexpr int kGroup = 128;
  const W4Copies w(n, k, kGroup);
  auto x = random_buffer<__half>(size_t(tokens) * k);
  DeviceBuffer<__half> y(size_t(tokens) * n);
  GraphTimer timer(std::max(w.copies, 8), [&](int i, cudaStream_t s) {
    fn(W4Matrix{w.q[i % w.copies].data(), w.p[i % w.copies].data(), n, k, kGroup}, x.data(), y.data(), tokens, s);
  });
  run(state, timer, double(w.bytes) + 2.0 * tokens * (k + n));
}

// gemv_w4 itself; `how`: the kernel and launch configuration (gemv_w4.cuh's W4Launch;
// default-constructed: what gemv_w4 picks).
void BM_gemv_w4(benchmark::State& state, int n, int k, int tokens, W4Launch how) {
  BM_gemv_w4_with(state, n, k, tokens, [how](const W4Matrix& m, const __half* x, __half* y, int t, cudaStream_t s) {
    gemv_w4(m, x, nullptr, y, t, s, true, how);
  });
}

// The kStream kernel with two 8-token mma columns (16 tokens, kCols = 2), timed beside the W4
// GEMM's 16-token entries: kWarps warps a 16-row tile, one tile a block, kDepth chunks in flight.
template <int kWarps, int kDepth>
void gemv_w4_cols2(const W4Matrix& m, const __half* x, __half* y, int tokens, cudaStream_t s) {
  using Xs = turbine::cuda::detail::GemvX<__half>;
  using Ep = turbine::cuda::detail::GemvStore<__half, __half>;
  turbine::cuda::detail::launch_gemv_w4_stream<kWarps, true, Xs, Ep, kDepth, 2>(m, tokens, 1, Xs{x}, Ep{y, nullptr}, s,
                                                                               turbine::cuda::pdl_available());
  TURBINE_CUDA_CHECK(cudaGetLastError());
}

// ---- W4A16 GEMM (gemm_w4, 16..256 tokens) against cuBLAS fp16 on the same shape ----------------
// gemm_w4_g128: bytes are the packed weights + scales/zeros + x + y (GB/s and the copy-ceiling
// fraction), plus TFLOP/s, its fraction of the bf16 GEMM ceiling and the speed-up over the
// cublas_f16 entry of the same shape and token count (run just before it). cublas_f16: fp16 weights
// through cuBLASLt (bytes: fp16 weights + x + y). w4_dequant_cublas: the path gemm_w4 replaces
// (w4_dequantize to fp16, then cuBLASLt). Weights rotate over copies as everywhere in this file.
std::map<std::string, double> g_w4_cublas_us;  // "<shape>/tokens:T" -> cublas_f16 median us


// Kernel: gemm_w4 as dispatched; Tile16/32/64: the first (register-fed) kernel with that token tile
// forced; Staged: gemm_w4.cuh's staged kernel, the variant `staged` with at least `min_chunks`
// 128-input chunks per k split (to tune w4s_pick).
enum class W4Gemm { Kernel, CublasF16, DequantCublas, Tile16, Tile32, Tile64, Staged };

void BM_w4_gemm_with(benchmark::State& state, std::string key, int n, int k, int tokens, W4Gemm which,
                     turbine::cuda::detail::W4sLaunchFn staged, int min_chunks) {
  constexpr int kGroup = 128;
  const double flop = 2.0 * tokens * n * double(k), act_bytes = 2.0 * tokens * (double(k) + n);
  auto x = random_buffer<__half>(size_t(tokens) * k);
  DeviceBuffer<__half> y(size_t(tokens) * n);
  if (which == W4Gemm::CublasF16) {
    const size_t wbytes = size_t(n) * k * 2;
    const int copies = copies_for(wbytes);
    std::vector<DeviceBuffer<__half>> w;
    for (int i = 0; i < copies; ++i) w.push_back(random_buffer<__half>(size_t(n) * k, 0.05f));
    Gemm& gemm = shared_gemm();
    GraphTimer timer(std::max(copies, 8), [&](int i, cudaStream_t s) {
      gemm(x.data(), w[i % copies].data(), static_cast<const __half*>(nullptr), y.data(), tokens, n, k, s);
    });
    run(state, timer, double(wbytes) + act_bytes);
    g_w4_cublas_us[key] = g_rows[g_current].us;
    state.counters["TFLOPs"] = flop / (g_rows[g_current].us * 1e-6) * 1e-12;
    return;
  }
  W4Copies w(n, k, kGroup);
  std::optional<DeviceBuffer<__half>> scratch;
  if (which == W4Gemm::DequantCublas) scratch.emplace(size_t(n) * k, "w4 dequantized");
  GraphTimer timer(std::max(w.copies, 8), [&](int i, cudaStream_t s) {
    const W4Matrix m{w.q[i % w.copies].data(), w.p[i % w.copies].data(), n, k, kGroup};
    if (which == W4Gemm::Kernel) {
      gemm_w4(m, x.data(), nullptr, y.data(), tokens, s);
    } else if (which == W4Gemm::Tile16) {
      turbine::cuda::detail::launch_gemm_w4_kernel<2>(m, x.data(), nullptr, y.data(), tokens, s);
    } else if (which == W4Gemm::Tile32) {
      turbine::cuda::detail::launch_gemm_w4_kernel<4>(m, x.data(), nullptr, y.data(), tokens, s);
    } else if (which == W4Gemm::Tile64) {
      turbine::cuda::detail::launch_gemm_w4_kernel<8>(m, x.data(), nullptr, y.data(), tokens, s);
    } else if (which == W4Gemm::Staged) {
      staged(m, x.data(), nullptr, y.data(), tokens, s, nullptr, min_chunks);
    } else {
      w4_dequantize(m, scratch->data(), s);
      shared_gemm()(x.data(), static_cast<const __half*>(scratch->data()), static_cast<const __half*>(nullptr),
                    y.data(), tokens, n, k, s);
    }
  });
  run(state, timer, double(w.bytes) + act_bytes);
  const double us = g_rows[g_current].us, tflops = flop / (us * 1e-6) * 1e-12;
  state.counters["TFLOPs"] = tflops;
  state.counters["frac_gemm_ceiling"] = tflops / g_gemm_tflops;
  if (g_w4_cublas_us.count(key)) state.counters["speedup_vs_cublas_f16"] = g_w4_cublas_us[key] / us;
}

void BM_w4_gemm(benchmark::State& state, std::string key, int n, int k, int tokens, W4Gemm which) {
  BM_w4_gemm_with(state, std::move(key), n, k, tokens, which, nullptr, 0);
}

// A staged-kernel variant `fn` with at least `min_chunks` chunks per k split.
void BM_w4_gemm_staged(benchmark::State& state, std::string key, int n, int k, int tokens,
                       turbine::cuda::detail::W4sLaunchFn fn, int min_chunks) {
  BM_w4_gemm_with(state, std::move(key), n, k, tokens, W4Gemm::Staged, fn, min_chunks);
}

// The GEMV with the fused add + RMSNorm prologue (the decode chain's QKV and gate/up input), with
// the prologue that loops over the tokens (the default) or the one compiled per token count.
template <bool kPerCount>
void BM_gemv_norm(benchmark::State& state, int n, int k, int tokens) {
  const size_t wbytes = size_t(n) * k * 2;
  const int copies = copies_for(wbytes);
  std::vector<DeviceBuffer<bf>> w;
  for (int i = 0; i < copies; ++i) w.push_back(random_buffer<bf>(size_t(n) * k, 0.05f));
  auto res = random_buffer<float>(size_t(tokens) * k, 4.f);
  auto delta = random_buffer<bf>(size_t(tokens) * k);
  auto gamma = random_buffer<bf>(k);
  DeviceBuffer<float> res_out(size_t(tokens) * k);
  DeviceBuffer<bf> y(size_t(tokens) * n);
  NormInput<bf> in;
  in.residual = res.data();
  in.delta = delta.data();
  in.gamma = gamma.data();
  in.residual_out = res_out.data();
  GraphTimer timer(std::max(copies, 8), [&](int i, cudaStream_t s) {
    turbine::cuda::detail::launch_gemv<bf>(w[i % copies].data(), n, k, tokens,
                                           turbine::cuda::detail::GemvXNorm<bf, kPerCount>{in},
                                           turbine::cuda::detail::GemvStore<bf, bf>{y.data(), nullptr}, s, true);
  });
  // weights, residual + delta read, residual written, y written
  run(state, timer, double(wbytes) + double(tokens) * k * (4 + 2 + 4) + 2.0 * tokens * n);
}

void BM_gemm(benchmark::State& state, int m, int n, int k) {
  auto x = random_buffer<bf>(size_t(m) * k), w = random_buffer<bf>(size_t(n) * k, 0.05f);
  DeviceBuffer<bf> y(size_t(m) * n);
  Gemm& gemm = shared_gemm();
  GraphTimer timer(
      5, [&](int, cudaStream_t s) { gemm(x.data(), w.data(), static_cast<const bf*>(nullptr), y.data(), m, n, k, s); });
  run(state, timer, 0, 2.0 * m * n * double(k));
}

template <class F, class... Args>
void reg(const std::string& name, F f, Args... args) {
  benchmark::RegisterBenchmark(name.c_str(),
                               [=](benchmark::State& st) {
                                 g_current = name;
                                 f(st, args...);
                               })
      ->UseManualTime()
      ->Unit(benchmark::kMicrosecond);
}

void register_all() {
  for (const Model& m : {kSmol, kLlama}) {
    const std::string p = m.name;
    for (int t : {1, 4096}) {
      const std::string ts = "/tokens:" + std::to_string(t);
      reg("rms_norm_f32res/" + p + ts, BM_rms_norm, m, t, false);
      reg("add_rms_norm_f32res/" + p + ts, BM_rms_norm, m, t, true);
      reg("embedding_to_f32/" + p + ts, BM_embedding, m, t);
      reg("silu_mul_fused/" + p + ts, BM_silu_mul, m, t);
      reg("rope_qkv_kvstore/" + p + ts, BM_rope_qkv, m, t);
    }
  }
  struct Mat {
    const char* name;
    int n, k;
  };
  const Mat llama[] = {{"llama3_8b_o_4096x4096", 4096, 4096},
                       {"llama3_8b_gate_14336x4096", 14336, 4096},
                       {"llama3_8b_down_4096x14336", 4096, 14336},
                       {"llama3_8b_qkv_6144x4096", 6144, 4096},
                       {"llama3_8b_lm_head_128256x4096", 128256, 4096}};
  const Mat smol[] = {{"smollm2_qkv_960x576", 960, 576},
                      {"smollm2_gate_up_3072x576", 3072, 576},
                      {"smollm2_down_576x1536", 576, 1536},
                      {"smollm2_lm_head_49152x576", 49152, 576}};
  for (const Mat& s : llama)
    for (int t = 1; t <= 8; ++t) {
      const std::string ts = "/tokens:" + std::to_string(t);
      reg(std::string("gemv/") + s.name + ts, BM_matvec, s.n, s.k, t, Mv::Gemv);
      reg(std::string("cublas_m_le_8/") + s.name + ts, BM_matvec, s.n, s.k, t, Mv::Cublas);
    }
  for (const Mat& s : smol) reg(std::string("gemv/") + s.name + "/tokens:1", BM_matvec, s.n, s.k, 1, Mv::Gemv);
  // Without programmatic dependent launch (each GEMV waits for the previous one to finish), and the
  // PDL runs again to see the run-to-run spread.
  for (const Mat& s : llama) {
    for (int t : {1, 8}) {
      const std::string ts = "/tokens:" + std::to_string(t);
      reg(std::string("gemv_no_pdl/") + s.name + ts, BM_matvec, s.n, s.k, t, Mv::GemvNoPdl);
      reg(std::string("gemv_again/") + s.name + ts, BM_matvec, s.n, s.k, t, Mv::Gemv);
    }
  }
  for (const Mat& s : {llama[0], llama[1], llama[2]}) {
    const std::string suffix = std::string(s.name) + "/tokens:1";
    reg("gemv_w8_u4/" + suffix, BM_gemv_variant<8, 4>, s.n, s.k);
    reg("gemv_w16_u4/" + suffix, BM_gemv_variant<16, 4>, s.n, s.k);
    reg("gemv_w16_u8/" + suffix, BM_gemv_variant<16, 8>, s.n, s.k);
  }
  for (const Mat& s : llama)
    for (int t : {1, 2, 4, 8}) reg(std::string("gemv_w4_g128/") + s.name + "/tokens:" + std::to_string(t), BM_gemv_w4, s.n, s.k, t, W4Launch{});
  // gemv_w4 without the programmatic launch: each launch starts its weight loads only after the
  // previous one finished; against gemv_w4_g128 it says what the early loads buy.
  for (const Mat& s : llama)
    reg(std::string("gemv_w4_no_pdl/") + s.name + "/tokens:1", BM_gemv_w4_with, s.n, s.k, 1,
        W4GemvFn([](const W4Matrix& m, const __half* x, __half* y, int t, cudaStream_t st) {
          gemv_w4(m, x, nullptr, y, t, st, false);
        }));
  // gemv_w4 with x read by the lanes from L2 (the default before 2026-12-06) and with x copied into
  // each block's shared memory by the copy engine (eE: E of the ring's 4 slots loaded before the
  // programmatic-launch wait, the rest after x's copy request), where x fits in 64 KB
  auto w4_with = [](turbine::cuda::W4X xs, int early) {
    return W4GemvFn([xs, early](const W4Matrix& m, const __half* x, __half* y, int t, cudaStream_t st) {
      W4Launch how;
      how.x = xs;
      how.early_slots = early;
      gemv_w4(m, x, nullptr, y, t, st, true, how);
    });
  };
  for (const Mat& s : llama)
    for (int t : {1, 2, 4, 8}) {
      const std::string key = std::string(s.name) + "/tokens:" + std::to_string(t);
      reg("gemv_w4_lanes/" + key, BM_gemv_w4_with, s.n, s.k, t, w4_with(turbine::cuda::W4X::kLanes, -1));
      if (size_t(t) * s.k * 2 <= turbine::cuda::kW4CopyEngineMaxX)
        for (int early : {4, 2})
          reg("gemv_w4_xbulk_e" + std::to_string(early) + "/" + key, BM_gemv_w4_with, s.n, s.k, t,
              w4_with(turbine::cuda::W4X::kCopyEngine, early));
    }
  for (const Mat& s : llama) reg(std::string("ceiling/read_at_w4_size/") + s.name, BM_read_at_size, s.n, s.k);
  for (const Mat& s : llama) {
    reg(std::string("ceiling/w4_gemv_schedule/") + s.name, BM_w4_schedule<>, s.n, s.k);
    reg(std::string("ceiling/w4_gemv_schedule_x/") + s.name, BM_w4_schedule<kXNc>, s.n, s.k);
    reg(std::string("ceiling/w4_gemv_schedule_x_sync/") + s.name, BM_w4_schedule<kXNc, true>, s.n, s.k);
    reg(std::string("ceiling/w4_gemv_schedule_xplain/") + s.name, BM_w4_schedule<kXPlain>, s.n, s.k);
    reg(std::string("ceiling/w4_gemv_schedule_xcg/") + s.name, BM_w4_schedule<kXCg>, s.n, s.k);
    reg(std::string("ceiling/w4_gemv_schedule_xbulk/") + s.name, BM_w4_schedule<kXBulk>, s.n, s.k);
  }
  // Every W4 GEMV variant at the decode step's four Linears (gate and up fused, as the engine runs
  // them), 1-8 tokens: base = the kernel before 2026-12-04; sW_tT = kStream with W warps per block
  // and T tiles per block; "scaled" = kStream dequantizing to (q - z) * s instead of scaling the sums.
  const Mat w4_gemv_shapes[] = {{"llama3_8b_o_4096x4096", 4096, 4096},
                                {"llama3_8b_qkv_6144x4096", 6144, 4096},
                                {"llama3_8b_gate_up_28672x4096", 28672, 4096},
                                {"llama3_8b_down_4096x14336", 4096, 14336}};
  const std::pair<const char*, W4Launch> w4_variants[] = {
      {"default", W4Launch{}},
      {"base", W4Launch{W4Kernel::kBase}},
      {"s4_t1", W4Launch{W4Kernel::kStream, 4, 1, true}},
      {"s4_t2", W4Launch{W4Kernel::kStream, 4, 2, true}},
      {"s4_t4", W4Launch{W4Kernel::kStream, 4, 4, true}},
      {"s8_t1", W4Launch{W4Kernel::kStream, 8, 1, true}},
      {"s8_t2", W4Launch{W4Kernel::kStream, 8, 2, true}},
      {"s8_t4", W4Launch{W4Kernel::kStream, 8, 4, true}},
      {"s4_t2_scaled", W4Launch{W4Kernel::kStream, 4, 2, false}},
      {"s8_t1_scaled", W4Launch{W4Kernel::kStream, 8, 1, false}},
      {"ring", W4Launch{W4Kernel::kRing}}};  // where its limits allow (below)
  // 16 tokens in the GEMV's stream kernel with two 8-token mma columns, beside gemm_w4_vs/.../tokens:16
  const std::pair<const char*, W4GemvFn> cols2_variants[] = {
      {"w8_d4", gemv_w4_cols2<8, 4>}, {"w4_d4", gemv_w4_cols2<4, 4>}, {"w8_d2", gemv_w4_cols2<8, 2>},
      {"w4_d2", gemv_w4_cols2<4, 2>}};
  for (const Mat& s : {llama[0], llama[3], Mat{"llama3_8b_gate_up_28672x4096", 28672, 4096}, llama[2]})
    for (const auto& [vname, fn] : cols2_variants)
      reg(std::string("gemv_w4_cols2/") + vname + "/" + s.name + "/tokens:16", BM_gemv_w4_with, s.n, s.k, 16, fn);
  for (const Mat& s : w4_gemv_shapes)
    for (int t : {1, 2, 4, 8})
      for (const auto& [vname, how] : w4_variants) {
        if (how.kernel == W4Kernel::kRing &&
            (size_t(t) * s.k * sizeof(__half) > turbine::cuda::kW4RingMaxX || !turbine::cuda::pdl_available()))
          continue;  // x past the ring's shared memory, or no sm_90
        reg(std::string("gemv_w4_variant/") + vname + "/" + s.name + "/tokens:" + std::to_string(t), BM_gemv_w4, s.n,
            s.k, t, how);
      }
  for (const Mat& s : {smol[0], smol[1], llama[3], llama[1]})
    for (int t : {1, 2, 4, 8}) {
      const std::string suffix = std::string(s.name) + "/tokens:" + std::to_string(t);
      reg("gemv_norm/" + suffix, BM_gemv_norm<false>, s.n, s.k, t);
      reg("gemv_norm_per_count/" + suffix, BM_gemv_norm<true>, s.n, s.k, t);
    }
  // The W4 GEMM's load schedule at 64 tokens (BM_w4_gemm_schedule): sK_dD = stages of K inputs, D deep;
  // _x with the 64 tokens' x as the GEMM loads it.
  for (const Mat& s : {llama[3], llama[0], Mat{"llama3_8b_gate_up_28672x4096", 28672, 4096}, llama[2]}) {
    const std::string name = std::string(s.name) + "/tokens:64";
    reg("ceiling/w4_gemm_schedule/s128_d4_x/" + name, BM_w4_gemm_schedule<128, 4, true>, s.n, s.k);
    reg("ceiling/w4_gemm_schedule/s128_d4/" + name, BM_w4_gemm_schedule<128, 4, false>, s.n, s.k);
    reg("ceiling/w4_gemm_schedule/s256_d4/" + name, BM_w4_gemm_schedule<256, 4, false>, s.n, s.k);
    reg("ceiling/w4_gemm_schedule/s512_d2/" + name, BM_w4_gemm_schedule<512, 2, false>, s.n, s.k);
    reg("ceiling/w4_gemm_schedule/s256_d2_x/" + name, BM_w4_gemm_schedule<256, 2, true>, s.n, s.k);
  }
  // W4A16 GEMM (gemm_w4) at Llama-3-8B's Linears; cublas_f16 first (the speed-up reads its time).
  const Mat w4_shapes[] = {{"llama3_8b_qkv_6144x4096", 6144, 4096},
                           {"llama3_8b_o_4096x4096", 4096, 4096},
                           {"llama3_8b_gate_up_28672x4096", 28672, 4096},
                           {"llama3_8b_down_4096x14336", 4096, 14336}};
  for (const Mat& s : w4_shapes)
    for (int t : {16, 32, 64, 128, 256}) {
      const std::string key = std::string(s.name) + "/tokens:" + std::to_string(t);
      reg("gemm_w4_vs/cublas_f16/" + key, BM_w4_gemm, key, s.n, s.k, t, W4Gemm::CublasF16);
      reg("gemm_w4_vs/gemm_w4_g128/" + key, BM_w4_gemm, key, s.n, s.k, t, W4Gemm::Kernel);
      reg("gemm_w4_vs/w4_dequant_cublas/" + key, BM_w4_gemm, key, s.n, s.k, t, W4Gemm::DequantCublas);
      if (t >= 32) {  // the token tile the launcher did not pick for this count
        if (t > 32) reg("gemm_w4_tile32/" + key, BM_w4_gemm, key, s.n, s.k, t, W4Gemm::Tile32);
        reg("gemm_w4_tile16/" + key, BM_w4_gemm, key, s.n, s.k, t, W4Gemm::Tile16);
        if (t <= 32) reg("gemm_w4_tile64/" + key, BM_w4_gemm, key, s.n, s.k, t, W4Gemm::Tile64);
      }
    }
  // The staged kernel's variants, mMR_tTN_wWT_sSTAGES (warp tile 16 MR rows x 8 TN tokens, WT token
  // groups per 8-warp block: block tile 128 MR / WT rows x 8 TN WT tokens), at least 4 chunks per k
  // split; "_mcC": C chunks. v1_tileT: the first kernel (gemm_w4_tileT above, here for one table).
  // After gemm_w4_vs, so each speed-up reads the cublas_f16 time of its shape.
  namespace wd = turbine::cuda::detail;
  std::vector<std::pair<std::string, wd::W4sLaunchFn>> w4s_variants;
  wd::for_each_w4s_variant([&](const char* name, wd::W4sLaunchFn fn) { w4s_variants.emplace_back(name, fn); });
  for (const Mat& s : w4_shapes)
    for (int t : {16, 32, 64, 128}) {
      const std::string key = std::string(s.name) + "/tokens:" + std::to_string(t);
      for (const auto& [vname, fn] : w4s_variants)
        reg(std::string("gemm_w4_variant/") + vname + "/" + key, BM_w4_gemm_staged, key, s.n, s.k, t, fn,
            wd::kW4sMinChunks);
      for (int mc : {2, 8})
        reg("gemm_w4_variant/default_mc" + std::to_string(mc) + "/" + key, BM_w4_gemm_staged, key, s.n, s.k, t,
            wd::w4s_pick(t), mc);
      const W4Gemm v1 = t <= 16 ? W4Gemm::Tile16 : t <= 32 ? W4Gemm::Tile32 : W4Gemm::Tile64;
      reg(std::string("gemm_w4_variant/v1_tile") + (t <= 16 ? "16/" : t <= 32 ? "32/" : "64/") + key, BM_w4_gemm, key,
          s.n, s.k, t, v1);
    }
  for (int m : {512, 4096}) {
    const std::string ms = "/m:" + std::to_string(m);
    for (const Mat& s : llama) reg(std::string("gemm/") + s.name + ms, BM_gemm, m, s.n, s.k);
    reg(std::string("gemm/smollm2_gate_up_3072x576") + ms, BM_gemm, m, 3072, 576);
  }
}

}  // namespace

int main(int argc, char** argv) {
  return turbine::bench::run_gpu_benchmarks("bench_cuda_kernels", argc, argv, [] {
    measure_ceilings();
    register_all();
    benchmark::RunSpecifiedBenchmarks();
    print_table();
  });
}
