// Probe: can a persistent W4 decode kernel stream a Llama-3-8B step's weights at the bandwidth
// floor across its grid barriers, if the weights come through a copy-engine ring instead of the
// lanes' own loads? (A measurement, not a test.)
//
// decode_persistent.cuh keeps each warp's next weight chunks in a register ring; at 3.17 ms a step
// its weight phases ran at 31-59% of the copy ceiling (H100, 2026-12-07). Here the copy engine
// brings the block's whole sequence of weight stages, (layer, projection, 16-row tile, K slice of
// KS inputs), into a ring of shared-memory slots guarded by full / empty mbarriers, so the ring
// keeps filling with the next projection's weights while the consumer warps wait at a barrier,
// stage x or run the attention. The consumer warps multiply exactly as the persistent kernel does
// (w4_chunk_mma, group 128, scale after the sum) and write each tile's rows.
// How a stage is asked for (Source):
//   rows    the weights as the engine stores them (row-major qweight and params): 16 bulk copies of
//           a row's KS / 2 bytes and 16 of its params (cp.async.bulk, bulk_copy.cuh)
//   tensor  the same layout through 2-D tensor maps (cp.async.bulk.tensor): 8 rows x KS inputs a
//           box, 2 boxes of weights and 2 of params a stage
//   tiled   a copy of the weights laid out stage by stage (16 rows x KS inputs, then their params,
//           contiguous): one bulk copy a stage
// `producer`: one extra warp issues every copy, waiting on the slots' empty barriers; `inline`: the
// consumer warp that is the last to finish a slot's stage asks for the stage S later into it.
//
// The step: 32 layers of QKV (6144 x 4096), an attention stand-in (a barrier and `attn_us` of
// waiting), O (4096 x 4096), gate/up (28672 x 4096), down (4096 x 14336), each projection's x
// being tanh of the one before's output (so a barrier that let a block through early, or a slot
// read before its bytes landed, changes the answer); a plain GPU GEMV chain computes the same and
// the probe prints the largest difference. Prints ms a step, GB/s on the packed bytes (qweight and
// params), the fraction of a read kernel's ceiling measured in the same run, and block 0's time per
// phase. Build: nvcc -O3 -std=c++20 -gencode=arch=compute_90a,code=sm_90a -I include tools/probe_stream_ring.cu
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime.h>

#include "probe_check.cuh"
#include "turbine/backend/cuda/bulk_copy.cuh"
#include "turbine/backend/cuda/w4_chunk.cuh"

namespace bulk = turbine::cuda::bulk;

constexpr int kLayers = 32, kHidden = 4096, kInter = 14336, kQkvRows = 6144, kGroup = 128;
constexpr int kMaxN = 2 * kInter;
constexpr int kSmemLimit = 227 * 1024;

enum Source { kRows = 0, kTensor = 1, kTiled = 2 };

struct Mat {
  const uint32_t* q;  // [n, k / 8]
  const __half2* p;   // [n, k / 128] {scale, 1024 + zero}
  int n, k;
  const unsigned char* tiled;  // the same, stage by stage for KS = kStageKs (kTiled)
  const CUtensorMap* qmap;     // tensor maps of q and p, boxes of 8 rows x kStageKs inputs (kTensor)
  const CUtensorMap* pmap;
};
constexpr int kStageKs = 2048;  // the K slice the tiled copy and the tensor maps' boxes are laid out for

struct Args {
  const Mat* mats;  // [layers * 4]
  int layers;
  const float* input;            // [hidden]: layer 0's x before tanh
  float* out;                    // [layers * 4, kMaxN]
  unsigned* barrier;             // one word
  unsigned long long* stamps;    // [5 layers + 1]
  int attn_ns;                   // the attention stand-in's wait
  int barriers;                  // 0: none (the stream alone; answers wrong)
};

__device__ __forceinline__ void tiles_of(int n, int& first, int& count) {
  const int tiles = n / 16, b = blockIdx.x, nb = gridDim.x;
  first = int(int64_t(b) * tiles / nb);
  count = int(int64_t(b + 1) * tiles / nb) - first;
}

__device__ __forceinline__ void consumers_sync(int threads) {
  asm volatile("bar.sync 1, %0;" ::"r"(threads) : "memory");
}
__device__ __forceinline__ unsigned long long now_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

struct SmemX {
  const __half* p;
  __device__ __forceinline__ uint4 operator()(int kk) const { return *reinterpret_cast<const uint4*>(p + kk); }
};

template <int W, int KS, int kSource>
struct Layout {
  // rows: padded, so that the 8 rows' 16-byte reads spread over all banks; the boxes and the tiled
  // copy land dense
  static constexpr int kRowBytes = kSource == kRows ? KS / 2 + 16 : KS / 2;
  static constexpr int kParamBytes = KS / kGroup * 4;
  static constexpr int kSlotBytes = 16 * kRowBytes + 16 * kParamBytes;
  static constexpr int kXBytes = (kInter + 8) * 2;
  static constexpr int kPartBytes = 2 * W * 16 * 4;
  static constexpr int kFixed = kXBytes + kPartBytes + 64 * 16;
  static constexpr int kSlots = (kSmemLimit - kFixed) / kSlotBytes;
  static constexpr int kSmem = kFixed + kSlots * kSlotBytes;
};

// kDedicated: one extra warp issues every copy, waiting on the slots' empty barriers; otherwise
// the consumer warp that is the last to finish a slot's stage (a shared-memory counter) asks for
// the stage S later into it, so every warp can take part in __syncthreads.
template <int W, int KS, bool kDedicated, int kSource>
__global__ void __launch_bounds__((W + kDedicated) * 32, 1) ring_kernel(const Args a) {
  using L = Layout<W, KS, kSource>;
  constexpr int S = L::kSlots;
  extern __shared__ __align__(128) unsigned char smem[];
  unsigned char* ring = smem;
  __half* xs = reinterpret_cast<__half*>(smem + S * L::kSlotBytes);
  float* part = reinterpret_cast<float*>(smem + S * L::kSlotBytes + L::kXBytes);
  uint64_t* full = reinterpret_cast<uint64_t*>(smem + S * L::kSlotBytes + L::kXBytes + L::kPartBytes);
  uint64_t* empty = full + 32;
  int* done = reinterpret_cast<int*>(empty + 32);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (threadIdx.x == 0) {
    for (int s = 0; s < S; ++s) {
      bulk::barrier_init(&full[s], 1);
      bulk::barrier_init(&empty[s], W);
      done[s] = 0;
    }
    bulk::fence_init();
  }
  __syncthreads();
  // The block's stage j as (layer, projection, tile, first input), without walking: every layer has
  // the same projections, so a layer is per_layer stages.
  int first_p[4], count_p[4], kst_p[4], per_layer = 0;
  for (int p = 0; p < 4; ++p) {
    const Mat m = a.mats[p];
    tiles_of(m.n, first_p[p], count_p[p]);
    kst_p[p] = (m.k + KS - 1) / KS;
    per_layer += count_p[p] * kst_p[p];
  }
  const int total = per_layer * a.layers;
  // stage j into `slot`: rows, lanes 0..15 each copy one row (its qweight slice and its params
  // slice); tensor, lanes 0..3 one box each; tiled, lane 0 the whole stage
  auto issue = [&](int j, int slot) {
    const int l = j / per_layer;
    int r = j - l * per_layer, p = 0;
    while (r >= count_p[p] * kst_p[p]) r -= count_p[p] * kst_p[p], ++p;
    const int t = first_p[p] + r / kst_p[p], k0 = (r % kst_p[p]) * KS;
    const Mat m = a.mats[l * 4 + p];
    const int len = min(KS, m.k - k0);
    const uint32_t qb = len / 2, pb = len / kGroup * 4;
    if (lane == 0) bulk::arrive_expect_tx(&full[slot], 16 * (qb + pb));
    __syncwarp();
    unsigned char* dst = ring + slot * L::kSlotBytes;
    if (kSource == kRows && lane < 16) {
      const int row = 16 * t + lane;
      bulk::copy_g2s(dst + lane * L::kRowBytes, m.q + size_t(row) * (m.k / 8) + k0 / 8, qb, &full[slot]);
      bulk::copy_g2s(dst + 16 * L::kRowBytes + lane * L::kParamBytes, m.p + size_t(row) * (m.k / kGroup) + k0 / kGroup,
                     pb, &full[slot]);
    }
    if (kSource == kTensor && lane < 4) {
      const int half = lane & 1, row = 16 * t + 8 * half;
      const bool params = lane >= 2;
      unsigned char* to = params ? dst + 16 * L::kRowBytes + half * 8 * L::kParamBytes : dst + half * 8 * L::kRowBytes;
      const CUtensorMap* map = params ? m.pmap : m.qmap;
      const int x = params ? k0 / kGroup : k0 / 8;
      asm volatile(
          "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];" ::"r"(
              bulk::smem_addr(to)),
          "l"(map), "r"(x), "r"(row), "r"(bulk::smem_addr(&full[slot]))
          : "memory");
    }
    if (kSource == kTiled && lane == 0)
      bulk::copy_g2s(dst, m.tiled + (size_t(t) * kst_p[p] + k0 / KS) * 16 * (KS / 2 + KS / kGroup * 4), 16 * (qb + pb),
                     &full[slot]);
  };
  if (!kDedicated && warp == 0)
    for (int j = 0; j < S && j < total; ++j) issue(j, j);

  if (kDedicated && warp == W) {  // the producer warp walks the block's stages
    for (int it = 0; it < total; ++it) {
      const int slot = it % S;
      if (it >= S) bulk::wait(&empty[slot], ((it / S) - 1) & 1);
      issue(it, slot);
    }
    return;
  }

  // the consumers
  constexpr int kThreads = W * 32;
  const int g = lane >> 2, c = lane & 3;
  unsigned phase_bit = 0;
  if (threadIdx.x == 0) {
    asm volatile("ld.relaxed.gpu.global.u32 %0, [%1];" : "=r"(phase_bit) : "l"(a.barrier) : "memory");
    phase_bit >>= 31;
  }
  auto grid_barrier = [&](int wait_ns) {
    consumers_sync(kThreads);
    if (threadIdx.x == 0) {
      if (a.barriers) {
        const unsigned add = blockIdx.x == 0 ? 0x80000000u - (gridDim.x - 1) : 1u;
        asm volatile("red.release.gpu.global.add.u32 [%0], %1;" ::"l"(a.barrier), "r"(add) : "memory");
      }
      if (wait_ns) {
        const unsigned long long t0 = now_ns();
        while (now_ns() - t0 < unsigned(wait_ns)) {
        }
      }
      if (a.barriers) {
        unsigned v;
        do {
          asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(a.barrier) : "memory");
        } while ((v >> 31) == phase_bit);
        phase_bit ^= 1u;
      }
    }
    consumers_sync(kThreads);
  };
  auto stamp = [&](int i) {
    if (a.stamps && blockIdx.x == 0 && threadIdx.x == 0) a.stamps[i] = now_ns();
  };
  stamp(0);
  int it = 0, tile_parity = 0;
  const SmemX xl{xs};
  for (int l = 0; l < a.layers; ++l)
    for (int p = 0; p < 4; ++p) {
      const Mat m = a.mats[l * 4 + p];
      const float* prev = l + p == 0 ? a.input : a.out + size_t(l * 4 + p - 1) * kMaxN;
      const int prevn = l + p == 0 ? kHidden : a.mats[l * 4 + p - 1].n;
      for (int i = threadIdx.x; i < m.k; i += kThreads) xs[i] = __float2half(tanhf(prev[i % prevn]));
      consumers_sync(kThreads);
      float* y = a.out + size_t(l * 4 + p) * kMaxN;
      int first, count;
      tiles_of(m.n, first, count);
      for (int t = first; t < first + count; ++t) {
        float acc[1][4] = {{0.f, 0.f, 0.f, 0.f}}, acc1[1][4] = {{0.f, 0.f, 0.f, 0.f}};
        for (int k0 = 0; k0 < m.k; k0 += KS, ++it) {
          const int slot = it % S, chunks = min(KS, m.k - k0) / 128;
          bulk::wait(&full[slot], (it / S) & 1);
          const unsigned char* s = ring + slot * L::kSlotBytes;
          for (int ch = warp; ch < chunks; ch += W) {
            const uint4 a4 = *reinterpret_cast<const uint4*>(s + g * L::kRowBytes + ch * 64 + 16 * c);
            const uint4 b4 = *reinterpret_cast<const uint4*>(s + (8 + g) * L::kRowBytes + ch * 64 + 16 * c);
            const __half2 pa = *reinterpret_cast<const __half2*>(s + 16 * L::kRowBytes + g * L::kParamBytes + ch * 4);
            const __half2 pb =
                *reinterpret_cast<const __half2*>(s + 16 * L::kRowBytes + (8 + g) * L::kParamBytes + ch * 4);
            turbine::cuda::detail::w4_chunk_mma<1, true>(a4, b4, pa, pb, xl, xl, g == 0, false, k0 + ch * 128 + 32 * c,
                                                         acc, acc1);
          }
          __syncwarp();
          if (kDedicated) {
            if (lane == 0) bulk::arrive(&empty[slot]);
          } else {
            int last = 0;
            if (lane == 0) last = atomicAdd(&done[slot], 1) == W - 1;
            if (__shfl_sync(0xffffffffu, last, 0)) {
              if (lane == 0) done[slot] = 0;
              asm volatile("fence.proxy.async.shared::cta;" ::: "memory");  // our reads before the copy engine's writes
              if (it + S < total) issue(it + S, slot);
            }
          }
        }
        float* pt = part + tile_parity * W * 16;
        tile_parity ^= 1;
        if (c == 0) {
          pt[warp * 16 + g] = acc[0][0] + acc1[0][0];
          pt[warp * 16 + 8 + g] = acc[0][2] + acc1[0][2];
        }
        consumers_sync(kThreads);
        if (threadIdx.x < 16) {
          float sum = 0.f;
#pragma unroll
          for (int w = 0; w < W; ++w) sum += pt[w * 16 + threadIdx.x];
          y[16 * t + threadIdx.x] = sum;
        }
      }
      grid_barrier(0);
      stamp(1 + 5 * l + (p == 0 ? 0 : p + 1));
      if (p == 0) {  // the attention stand-in
        grid_barrier(a.attn_ns);
        stamp(2 + 5 * l);
      }
    }
}

// The reference: x = tanh(previous output) in fp16, y = W x with the weights dequantized exactly.
__global__ void ref_stage(const float* prev, int prevn, __half* x, int k) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < k; i += gridDim.x * blockDim.x)
    x[i] = __float2half(tanhf(prev[i % prevn]));
}
__global__ void ref_gemv(Mat m, const __half* x, float* y) {
  const int row = blockIdx.x * 8 + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (row >= m.n) return;
  float sum = 0.f;
  for (int j = lane; j < m.k / 8; j += 32) {
    const uint32_t w = m.q[size_t(row) * (m.k / 8) + j];
    const __half2 pr = m.p[size_t(row) * (m.k / kGroup) + j * 8 / kGroup];
    const float s = __low2float(pr), z = __high2float(pr) - 1024.f;
    float d = 0.f;
    for (int e = 0; e < 8; ++e) {
      const int nib = (e & 1) ? (e >> 1) + 4 : e >> 1;
      d += (float((w >> (4 * nib)) & 15u) - z) * __half2float(x[8 * j + e]);
    }
    sum += d * s;
  }
  for (int o = 16; o; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  if (lane == 0) y[row] = sum;
}

__global__ void fill(uint32_t* q, size_t words, __half2* p, size_t params, uint32_t seed) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < words; i += size_t(gridDim.x) * blockDim.x) {
    uint32_t h = uint32_t(i) * 2654435761u ^ seed;
    h ^= h >> 15, h *= 2246822519u, h ^= h >> 13, h *= 3266489917u, h ^= h >> 16;
    q[i] = h;
    if (i < params) {
      const float s = 0.004f + 0.004f * float(h & 255) / 255.f, z = float((h >> 8) & 15);
      p[i] = __halves2half2(__float2half(s), __float2half(1024.f + z));
    }
  }
}

// The tiled copy: stage (tile t, slice j) at ((t * slices + j) * 16 rows) * (KS / 2 + KS / 32) bytes:
// the 16 rows' KS / 2 bytes of weights, then their KS / 32 bytes of params.
__global__ void tile_copy(const uint32_t* q, const __half2* p, int n, int k, unsigned char* out) {
  constexpr int KS = kStageKs, qw = KS / 8, pw = KS / kGroup, stage_words = 16 * (qw + pw);
  const int slices = k / KS;
  const size_t total = size_t(n / 16) * slices * stage_words;
  uint32_t* o = reinterpret_cast<uint32_t*>(out);
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
    const size_t stage = i / stage_words;
    const int w = int(i % stage_words), t = int(stage / slices), j = int(stage % slices);
    if (w < 16 * qw) {
      const int r = w / qw, c = w % qw;
      o[i] = q[size_t(16 * t + r) * (k / 8) + j * qw + c];
    } else {
      const int r = (w - 16 * qw) / pw, c = (w - 16 * qw) % pw;
      o[i] = reinterpret_cast<const uint32_t*>(p)[size_t(16 * t + r) * (k / kGroup) + j * pw + c];
    }
  }
}

__global__ void read_kernel(const uint4* w, size_t vecs, unsigned* sink) {
  const size_t n = size_t(gridDim.x) * blockDim.x;
  unsigned acc = 0;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < vecs; i += 4 * n) {
    uint4 v[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) v[j] = i + j * n < vecs ? __ldg(w + i + j * n) : make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int j = 0; j < 4; ++j) acc ^= v[j].x + v[j].y + v[j].z + v[j].w;
  }
  if (acc == 0x12345678u) sink[0] = acc;
}

struct Setup {
  std::vector<Mat> mats;
  Mat* d_mats = nullptr;
  float *input = nullptr, *out = nullptr, *ref = nullptr;
  __half* x = nullptr;
  unsigned* barrier = nullptr;
  unsigned long long* stamps = nullptr;
  double bytes = 0;
};

template <int W, int KS, bool kDedicated, int kSource>
void run(const Setup& st, int blocks, cudaStream_t s, double ceiling, int attn_ns, int barriers) {
  static_assert(kSource == kRows || KS == kStageKs, "the tiled copy and the maps' boxes are kStageKs inputs wide");
  using L = Layout<W, KS, kSource>;
  auto kernel = ring_kernel<W, KS, kDedicated, kSource>;
  CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, L::kSmem));
  Args a{st.d_mats, kLayers, st.input, st.out, st.barrier, st.stamps, attn_ns, barriers};
  cudaEvent_t e0, e1;
  CHECK(cudaEventCreate(&e0));
  CHECK(cudaEventCreate(&e1));
  CHECK(cudaMemsetAsync(st.out, 0xff, size_t(kLayers) * 4 * kMaxN * 4, s));  // poison: NaN
  kernel<<<blocks, (W + kDedicated) * 32, L::kSmem, s>>>(a);
  CHECK(cudaGetLastError());
  CHECK(cudaStreamSynchronize(s));
  // the check: every projection's output against the reference GEMV on the kernel's own x
  for (int i = 0; i < kLayers * 4; ++i) {
    const float* prev = i == 0 ? st.input : st.out + size_t(i - 1) * kMaxN;
    const int prevn = i == 0 ? kHidden : st.mats[i - 1].n;
    ref_stage<<<64, 256, 0, s>>>(prev, prevn, st.x, st.mats[i].k);
    ref_gemv<<<(st.mats[i].n + 7) / 8, 256, 0, s>>>(st.mats[i], st.x, st.ref + size_t(i) * kMaxN);
  }
  CHECK(cudaStreamSynchronize(s));
  std::vector<float> got(size_t(kLayers) * 4 * kMaxN), want(got.size());
  CHECK(cudaMemcpy(got.data(), st.out, got.size() * 4, cudaMemcpyDeviceToHost));
  CHECK(cudaMemcpy(want.data(), st.ref, want.size() * 4, cudaMemcpyDeviceToHost));
  double worst = 0, scale = 0;
  for (int i = 0; i < kLayers * 4; ++i)
    for (int r = 0; r < st.mats[i].n; ++r) {
      const double gv = got[size_t(i) * kMaxN + r], wv = want[size_t(i) * kMaxN + r];
      worst = std::isfinite(gv) ? std::max(worst, std::fabs(gv - wv)) : 1e30;
      scale = std::max(scale, std::fabs(wv));
    }
  const int reps = 10;
  CHECK(cudaEventRecord(e0, s));
  for (int r = 0; r < reps; ++r) kernel<<<blocks, (W + kDedicated) * 32, L::kSmem, s>>>(a);
  CHECK(cudaEventRecord(e1, s));
  CHECK(cudaEventSynchronize(e1));
  float ms = 0;
  CHECK(cudaEventElapsedTime(&ms, e0, e1));
  ms /= reps;
  std::vector<unsigned long long> t(5 * kLayers + 1);
  CHECK(cudaMemcpy(t.data(), st.stamps, t.size() * 8, cudaMemcpyDeviceToHost));
  double ph[5] = {0, 0, 0, 0, 0};
  for (int l = 0; l < kLayers; ++l)
    for (int j = 0; j < 5; ++j) ph[j] += double(t[5 * l + j + 1] - t[5 * l + j]) / 1e3 / kLayers;
  const double gbs = st.bytes / (ms * 1e-3) / 1e9;
  const char* src[] = {"rows  ", "tensor", "tiled "};
  std::printf("%s %s W=%-2d KS=%-5d slots=%-2d barrier=%d attn=%5.1fus | %7.3f ms %7.0f GB/s %5.1f%% | qkv %5.1f attn %5.1f o %5.1f "
              "gu %5.1f down %5.1f us | max|diff| %.2e of %.2e %s\n",
              src[kSource], kDedicated ? "producer" : "inline  ", W, KS, L::kSlots, barriers, attn_ns / 1e3, ms, gbs, 100 * gbs / ceiling, ph[0], ph[1], ph[2], ph[3], ph[4],
              worst, scale, !barriers ? "(not checked)" : worst <= 1e-3 * scale ? "ok" : "WRONG");
}

int main() {
  cudaDeviceProp prop{};
  CHECK(cudaGetDeviceProperties(&prop, 0));
  const int blocks = prop.multiProcessorCount;
  cudaStream_t s;
  CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  Setup st;
  const int shapes[4][2] = {{kQkvRows, kHidden}, {kHidden, kHidden}, {2 * kInter, kHidden}, {kHidden, kInter}};
  PFN_cuTensorMapEncodeTiled_v12000 encode = nullptr;
  cudaDriverEntryPointQueryResult found{};
  CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", reinterpret_cast<void**>(&encode), 12000,
                                         cudaEnableDefault, &found));
  if (found != cudaDriverEntryPointSuccess || !encode) {
    std::fprintf(stderr, "no cuTensorMapEncodeTiled\n");
    return 1;
  }
  std::vector<CUtensorMap> maps(size_t(kLayers) * 4 * 2);
  CUtensorMap* d_maps;
  CHECK(cudaMalloc(&d_maps, maps.size() * sizeof(CUtensorMap)));
  // a 2-D map over a row-major [rows, width] uint32 matrix, boxes of 8 rows x box_w words
  auto make_map = [&](CUtensorMap* map, const void* base, int width, int rows, int box_w) {
    const cuuint64_t dims[2] = {cuuint64_t(width), cuuint64_t(rows)}, strides[1] = {cuuint64_t(width) * 4};
    const cuuint32_t box[2] = {cuuint32_t(box_w), 8}, estr[2] = {1, 1};
    const CUresult r = encode(map, CU_TENSOR_MAP_DATA_TYPE_UINT32, 2, const_cast<void*>(base), dims, strides, box, estr,
                              CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_NONE, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                              CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (r != CUDA_SUCCESS) {
      std::fprintf(stderr, "cuTensorMapEncodeTiled: error %d\n", int(r));
      std::exit(1);
    }
  };
  for (int l = 0; l < kLayers; ++l)
    for (int p = 0; p < 4; ++p) {
      Mat m{nullptr, nullptr, shapes[p][0], shapes[p][1], nullptr, nullptr, nullptr};
      const size_t words = size_t(m.n) * m.k / 8, params = size_t(m.n) * m.k / kGroup;
      uint32_t* q;
      __half2* pp;
      unsigned char* tiled;
      CHECK(cudaMalloc(&q, words * 4));
      CHECK(cudaMalloc(&pp, params * 4));
      CHECK(cudaMalloc(&tiled, words * 4 + params * 4));
      fill<<<1024, 256, 0, s>>>(q, words, pp, params, 0x9e3779b9u * uint32_t(l * 4 + p + 1));
      tile_copy<<<1024, 256, 0, s>>>(q, pp, m.n, m.k, tiled);
      m.q = q;
      m.p = pp;
      m.tiled = tiled;
      const size_t i = size_t(l * 4 + p) * 2;
      make_map(&maps[i], q, m.k / 8, m.n, kStageKs / 8);
      make_map(&maps[i + 1], pp, m.k / kGroup, m.n, kStageKs / kGroup);
      m.qmap = d_maps + i;
      m.pmap = d_maps + i + 1;
      st.mats.push_back(m);
      st.bytes += double(words) * 4 + double(params) * 4;
    }
  CHECK(cudaMemcpy(d_maps, maps.data(), maps.size() * sizeof(CUtensorMap), cudaMemcpyHostToDevice));
  CHECK(cudaMalloc(&st.d_mats, st.mats.size() * sizeof(Mat)));
  CHECK(cudaMemcpy(st.d_mats, st.mats.data(), st.mats.size() * sizeof(Mat), cudaMemcpyHostToDevice));
  std::vector<float> in(kHidden);
  for (int i = 0; i < kHidden; ++i) in[i] = std::sin(0.37f * i) * 2.f;
  CHECK(cudaMalloc(&st.input, kHidden * 4));
  CHECK(cudaMemcpy(st.input, in.data(), kHidden * 4, cudaMemcpyHostToDevice));
  CHECK(cudaMalloc(&st.out, size_t(kLayers) * 4 * kMaxN * 4));
  CHECK(cudaMalloc(&st.ref, size_t(kLayers) * 4 * kMaxN * 4));
  CHECK(cudaMalloc(&st.x, kMaxN * 2));
  CHECK(cudaMalloc(&st.barrier, 64));
  CHECK(cudaMemset(st.barrier, 0, 64));
  CHECK(cudaMalloc(&st.stamps, (5 * kLayers + 1) * 8));
  CHECK(cudaGetLastError());
  CHECK(cudaStreamSynchronize(s));

  // the ceiling: a plain read of 2 GiB, 16-byte loads, four in flight a thread
  const size_t rb = size_t(2) << 30;
  uint4* big;
  unsigned* sink;
  CHECK(cudaMalloc(&big, rb));
  CHECK(cudaMemset(big, 1, rb));
  CHECK(cudaMalloc(&sink, 64));
  cudaEvent_t e0, e1;
  CHECK(cudaEventCreate(&e0));
  CHECK(cudaEventCreate(&e1));
  read_kernel<<<blocks * 4, 512, 0, s>>>(big, rb / 16, sink);
  CHECK(cudaEventRecord(e0, s));
  for (int r = 0; r < 5; ++r) read_kernel<<<blocks * 4, 512, 0, s>>>(big, rb / 16, sink);
  CHECK(cudaEventRecord(e1, s));
  CHECK(cudaEventSynchronize(e1));
  float ms = 0;
  CHECK(cudaEventElapsedTime(&ms, e0, e1));
  const double ceiling = 5.0 * rb / (ms * 1e-3) / 1e9;
  CHECK(cudaFree(big));
  std::printf("%s, %d SMs; step bytes %.3f GB (qweight + params); read ceiling %.0f GB/s -> floor %.3f ms\n", prop.name,
              blocks, st.bytes / 1e9, ceiling, st.bytes / ceiling / 1e6);
  run<8, kStageKs, true, kRows>(st, blocks, s, ceiling, 0, 1);
  // the same sweep for both few-copy sources: the stream alone, with the barriers, with an attention
  // stand-in, 12 consumer warps, and the consumers issuing
  auto sweep = [&]<int kSource>() {
    run<8, kStageKs, true, kSource>(st, blocks, s, ceiling, 0, 0);
    run<8, kStageKs, true, kSource>(st, blocks, s, ceiling, 0, 1);
    run<8, kStageKs, true, kSource>(st, blocks, s, ceiling, 5000, 1);
    run<12, kStageKs, true, kSource>(st, blocks, s, ceiling, 0, 1);
    run<8, kStageKs, false, kSource>(st, blocks, s, ceiling, 0, 1);
    run<12, kStageKs, false, kSource>(st, blocks, s, ceiling, 0, 1);
  };
  sweep.template operator()<kTensor>();
  sweep.template operator()<kTiled>();
  return 0;
}
