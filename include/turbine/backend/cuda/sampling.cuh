#pragma once
// Token selection on the GPU, by the CPU Sampler's rules (engine/sampler.hpp): repetition penalty,
// then greedy argmax, or temperature, top-k, softmax, top-p, min-p and one seeded draw. Only the
// chosen ids leave the device.
//
// One block of 1024 threads per row, and everything a row needs lives in shared memory: a call
// allocates nothing and is one kernel launch with no host decisions, so it can be captured in a
// CUDA graph. Per sampled row:
//  1. One pass over the row (from DRAM) finds each thread's maximum (first index on ties) and, when
//     top-p runs over the whole vocabulary, the softmax denominator Z (online softmax). Greedy rows
//     stop here.
//  2. The 1024 thread maxima, sorted, bound the answer: at least k elements are >= the k-th largest
//     maximum (top-k), and the elements >= the shortest prefix of maxima whose mass reaches
//     top_p * Z hold at least that mass (top-p). A second pass (from L2) gathers the elements above
//     that bound into shared memory: usually tens to hundreds of them.
//  3. The candidates are sorted on chip by (logit desc, index asc), which is the CPU's order, and
//     the CPU's steps run on them: softmax over the top k, the top-p prefix by a double running sum,
//     min-p, then one Philox uniform (key = seed, subsequence = step) picks from the kept prefix.
// A full cub::DeviceSegmentedRadixSort of [batch, vocab] pairs would move 8 bytes per element per
// radix pass through one block per row (bench/cuda_sampling.cu times it next to this); the bound
// above reads each logit about twice and sorts a few hundred keys.
//
// Exact fallbacks (slower, for rare inputs): when the bound gathers more than 4096 candidates (heavy
// ties), top_k > 1024, or the top-p prefix is longer than the maxima cover, select_exact() narrows
// the threshold with 7 pivots per pass (counts or masses in registers, no atomics) until at most 4096
// elements remain between the pivots, then sorts those. A kept set of more than 4096 elements, and
// plain temperature sampling, are drawn by chunked inverse CDF over the row (draw_above()).
#include <cub/block/block_radix_sort.cuh>
#include <cub/block/block_scan.cuh>
#include <curand_kernel.h>

#include <atomic>
#include <climits>
#include <cstdint>

#include "check.cuh"
#include "vec.cuh"

namespace turbine::cuda {

/// Per-row sampling settings (a device array, one per row), as in GenerationConfig. A row's draw is
/// a function of (seed, step) alone: the same pair gives the same token, so advance step per token.
struct SamplingParams {
  float temperature = 0.0f;         ///< logits are divided by it; <= 0: greedy
  float top_p = 1.0f;               ///< nucleus: keep the smallest prefix of mass >= top_p; 1: off
  float min_p = 0.0f;               ///< keep tokens of probability >= min_p * the largest; 0: off
  float repetition_penalty = 1.0f;  ///< applied to the tokens of the row's history; 1: off
  int top_k = 0;                    ///< keep the top_k largest logits; 0: off; 1: greedy
  uint64_t seed = 0;                ///< Philox key of the row's draws
  uint64_t step = 0;                ///< Philox subsequence: the index of this draw (advance per token)
};

namespace sampling_detail {

inline constexpr int kThreads = 1024;
inline constexpr int kCap = 4096;  // candidates held on chip
inline constexpr int kItems = kCap / kThreads;
inline constexpr int kPivots = 7;  // per select_exact() pass
inline constexpr int kMaxChunks = 256;               // draw_above(): 16-byte vectors / 1024, plus one
inline constexpr int kMaxVocab = 1 << 22;              // argmax_rows
inline constexpr int kMaxSampleVocab = 1000000;        // GpuSampler: float rows need 246 chunks
static_assert((kMaxSampleVocab / 4 + kThreads - 1) / kThreads + 1 <= kMaxChunks);
inline constexpr float kLog2e = 1.4426950408889634f;

// ---- keys: (logit desc, index asc) as one unsigned order ---------------------------------------

// Order-preserving bits of a float; -0 is +0, as in the CPU's comparisons.
__device__ __forceinline__ uint32_t float_key(float x) {
  uint32_t u = __float_as_uint(x);
  if (u == 0x80000000u) u = 0;
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ float key_float(uint32_t k) {
  return __uint_as_float((k & 0x80000000u) ? (k & 0x7FFFFFFFu) : ~k);
}
// Larger composite = earlier in the CPU's order. Unique per element, so thresholds never tie.
__device__ __forceinline__ uint64_t composite(float x, int idx) {
  return (uint64_t(float_key(x)) << 32) | (0xFFFFFFFFu - uint32_t(idx));
}
__device__ __forceinline__ float comp_x(uint64_t c) { return key_float(uint32_t(c >> 32)); }
__device__ __forceinline__ int comp_idx(uint64_t c) { return int(0xFFFFFFFFu - uint32_t(c)); }

__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// ---- one row, read as 16-byte vectors plus a few scalars at the unaligned ends ----------------

template <class T>
struct RowRef {
  static constexpr int N = 16 / sizeof(T);
  const T* p;
  int vocab, head, nvec, nscalar, nit;
  __device__ RowRef(const T* base, int n) : p(base), vocab(n) {
    const int mis = int((reinterpret_cast<uintptr_t>(base) & 15u) / sizeof(T));
    head = min(mis ? N - mis : 0, n);
    nvec = (n - head) / N;
    nscalar = n - nvec * N;  // head + tail, < 2N
    nit = (nvec + kThreads - 1) / kThreads;
  }
  __device__ int scalar_index(int s) const { return s < head ? s : head + nvec * N + (s - head); }
};

template <class T>
__device__ __forceinline__ void unpack16(const uint4& u, float (&v)[16 / sizeof(T)]) {
  if constexpr (std::same_as<T, float>) {
    v[0] = __uint_as_float(u.x), v[1] = __uint_as_float(u.y), v[2] = __uint_as_float(u.z), v[3] = __uint_as_float(u.w);
  } else {
    vec::unpack8<T>(u, v);
  }
}

// transformers' rule; applied once per element, so a token seen several times is penalized once. Out
// of line: seen tokens are rare, and the IEEE division would otherwise be inlined into every pass.
static __device__ __noinline__ float penalize(float l, float pen) { return l > 0.0f ? l / pen : l * pen; }

template <int N>
__device__ __forceinline__ void apply_penalty(float (&v)[N], int i0, int cnt, const uint32_t* seen, float pen) {
  const int w = i0 >> 5;
  const uint64_t bits = ((uint64_t(seen[w + 1]) << 32) | seen[w]) >> (i0 & 31);
  if ((bits & ((1u << N) - 1)) == 0) return;
#pragma unroll
  for (int e = 0; e < N; ++e)
    if (e < cnt && ((bits >> e) & 1)) v[e] = penalize(v[e], pen);
}

// Calls f(chunk, first_index, values, count) for each of this thread's slots (a 16-byte vector, or
// one scalar), in increasing index order, with the penalty applied, and flush(chunk) by every
// thread after each slot (a uniform point for warp collectives). Chunk j < nit is vector j * 1024 +
// thread; chunk nit holds the scalars. Four vectors are in flight per thread.
template <class T, class F, class G>
__device__ __forceinline__ void for_each_slot(const RowRef<T>& r, const uint32_t* seen, float pen, F&& f, G&& flush) {
  constexpr int N = RowRef<T>::N;
  constexpr int U = 4;
  const int t = threadIdx.x;
  const bool has_scalar = t < r.nscalar;
  const int si = has_scalar ? r.scalar_index(t) : 0;
  auto scalar = [&](bool active) {
    if (active) {
      float v[N];
#pragma unroll
      for (int e = 0; e < N; ++e) v[e] = 0.0f;
      v[0] = to_float(r.p[si]);
      if (seen) apply_penalty<N>(v, si, 1, seen, pen);
      f(r.nit, si, v, 1);
    }
    flush(r.nit);
  };
  scalar(has_scalar && si < r.head);
  const uint4* body = reinterpret_cast<const uint4*>(r.p + r.head);
  for (int j0 = 0; j0 < r.nit; j0 += U) {
    uint4 raw[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int vi = (j0 + u) * kThreads + t;
      raw[u] = vi < r.nvec ? __ldg(body + vi) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int j = j0 + u;
      if (j >= r.nit) break;
      const int vi = j * kThreads + t;
      if (vi < r.nvec) {
        float v[N];
        unpack16<T>(raw[u], v);
        const int i0 = r.head + vi * N;
        if (seen) apply_penalty<N>(v, i0, N, seen, pen);
        f(j, i0, v, N);
      }
      flush(j);
    }
  }
  scalar(has_scalar && si >= r.head);
}

// ---- block collectives ------------------------------------------------------------------------

struct ArgMax {
  float x;
  int i;
};

__device__ __forceinline__ ArgMax better(ArgMax a, ArgMax b) {
  return (b.x > a.x || (b.x == a.x && b.i < a.i)) ? b : a;
}

template <class V>
__device__ __forceinline__ V warp_sum(V v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ ArgMax warp_argmax(ArgMax a) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const ArgMax b{__shfl_xor_sync(0xffffffffu, a.x, o), __shfl_xor_sync(0xffffffffu, a.i, o)};
    a = better(a, b);
  }
  return a;
}

// The block's argmax (first index on ties), returned to every thread. scratch: 33 entries.
__device__ __forceinline__ ArgMax block_argmax(ArgMax a, ArgMax* scratch) {
  a = warp_argmax(a);
  const int w = threadIdx.x >> 5, l = threadIdx.x & 31;
  if (l == 0) scratch[w] = a;
  __syncthreads();
  if (w == 0) {
    a = warp_argmax(scratch[l]);
    if (l == 0) scratch[32] = a;
  }
  __syncthreads();
  a = scratch[32];
  __syncthreads();
  return a;
}

template <class V, class Op>
__device__ __forceinline__ V block_reduce(V v, V* scratch, Op op) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  const int w = threadIdx.x >> 5, l = threadIdx.x & 31;
  if (l == 0) scratch[w] = v;
  __syncthreads();
  if (w == 0) {
    v = scratch[l];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
    if (l == 0) scratch[32] = v;
  }
  __syncthreads();
  v = scratch[32];
  __syncthreads();
  return v;
}

struct Shared {
  using MaxSort = cub::BlockRadixSort<uint32_t, kThreads, 1, int>;
  using CandSort = cub::BlockRadixSort<uint64_t, kThreads, kItems>;
  using ScanF = cub::BlockScan<float, kThreads>;
  using ScanD = cub::BlockScan<double, kThreads>;
  union {
    typename MaxSort::TempStorage max_sort;
    typename CandSort::TempStorage cand_sort;
    uint64_t cand[kCap];                // gathered composites, in no order
    float chunk_total[kMaxChunks];      // draw_above(): mass per chunk
  } a;
  union {
    uint64_t sorted[kCap];              // candidates, CPU order
    float chunk_part[32][kMaxChunks];   // draw_above(): mass per warp and chunk
  } b;
  union {
    typename ScanF::TempStorage f;
    typename ScanD::TempStorage d;
  } scan;
  float red_f[32][kPivots + 1];
  int red_i[32][kPivots + 1];
  float acc[kPivots + 1];
  int cnt[kPivots + 1];
  ArgMax ra[33];
  double rd[33];
  float rf[33];
  double u, d0;
  float f0;
  int count, i0, i1, i2;
  uint32_t u0;
};

// ---- pass 1: thread maxima, argmax, minimum, online Z -----------------------------------------

template <class T, bool kZ>
__device__ __forceinline__ void scan_row(const RowRef<T>& r, const uint32_t* seen, float pen, float a, ArgMax& best,
                                         float& xmin, float& m, float& s) {
  constexpr int N = RowRef<T>::N;
  for_each_slot(
      r, seen, pen,
      [&](int, int i0, const float (&v)[N], int cnt) {
        float vmax = v[0], vmin = v[0];
#pragma unroll
        for (int e = 1; e < N; ++e)
          if (e < cnt) vmax = fmaxf(vmax, v[e]), vmin = fminf(vmin, v[e]);
        xmin = fminf(xmin, vmin);
        if (vmax > best.x) {  // strict: elements come in increasing index order
          best.x = vmax;
#pragma unroll
          for (int e = 0; e < N; ++e)
            if (e < cnt && v[e] == vmax) {
              best.i = i0 + e;
              break;
            }
        }
        if constexpr (kZ) {
          if (vmax > m) {
            s *= fast_exp2((m - vmax) * a);
            m = vmax;
          }
          if (m > -INFINITY) {
#pragma unroll
            for (int e = 0; e < N; ++e)
              if (e < cnt) s += fast_exp2((v[e] - m) * a);
          }
        }
      },
      [](int) {});
}

// ---- bound from the sorted thread maxima --------------------------------------------------------

// A composite L such that {c >= L} holds the top `rank + 1` elements (by_mass false) or at least
// `target` mass (by_mass true; found is false when all maxima together hold less). 0 = everything.
static __device__ __noinline__ uint64_t maxima_bound(Shared& sh, ArgMax best, bool by_mass, int rank, float target,
                                                 float mx, float a, bool& found) {
  const int t = threadIdx.x;
  uint32_t key[1] = {best.i == INT_MAX ? 0u : float_key(best.x)};
  int val[1] = {best.i};
  __syncthreads();
  Shared::MaxSort(sh.a.max_sort).SortDescending(key, val);  // thread t holds rank t
  if (t == 0) sh.i0 = INT_MAX, sh.i1 = -1;
  __syncthreads();
  if (by_mass) {
    const float e = key[0] ? fast_exp2((key_float(key[0]) - mx) * a) : 0.0f;
    float cum;
    Shared::ScanF(sh.scan.f).InclusiveSum(e, cum);
    if (cum >= target) atomicMin(&sh.i0, t);
    __syncthreads();
    rank = sh.i0;
    if (rank == INT_MAX) {
      found = false;
      return 0;
    }
  }
  found = true;
  if (t == rank) sh.u0 = key[0];
  __syncthreads();
  const uint32_t k = sh.u0;
  if (k == 0) return 0;  // the bound fell on threads without elements (small vocabulary)
  if (key[0] == k) atomicMax(&sh.i1, val[0]);  // all maxima tied with it, whatever their rank
  __syncthreads();
  return (uint64_t(k) << 32) | (0xFFFFFFFFu - uint32_t(sh.i1));
}

// ---- gather, sort, and the CPU's steps on sorted candidates ------------------------------------

// Collects the composites in [lo, hi] into sh.a.cand (the first kCap of them); returns how many there are.
template <class T>
static __device__ __noinline__ int gather(const RowRef<T>& r, const uint32_t* seen, float pen, Shared& sh, uint64_t lo,
                                      uint64_t hi) {
  constexpr int N = RowRef<T>::N;
  __syncthreads();
  if (threadIdx.x == 0) sh.count = 0;
  __syncthreads();
  const float xlo = comp_x(lo);  // NaN for lo == 0: no early skip
  const int lane = threadIdx.x & 31;
  for_each_slot(
      r, seen, pen,
      [&](int, int i0, const float (&v)[N], int cnt) {
        float vmax = v[0];
#pragma unroll
        for (int e = 1; e < N; ++e)
          if (e < cnt) vmax = fmaxf(vmax, v[e]);
        if (vmax < xlo) return;
#pragma unroll
        for (int e = 0; e < N; ++e) {
          if (e >= cnt || v[e] != v[e]) continue;
          const uint64_t c = composite(v[e], i0 + e);
          if (c < lo || c > hi) continue;
          const unsigned m = __activemask();  // warp-aggregated slot reservation
          const int leader = __ffs(m) - 1;
          int base = 0;
          if (lane == leader) base = atomicAdd(&sh.count, __popc(m));
          base = __shfl_sync(m, base, leader);
          const int pos = base + __popc(m & ((1u << lane) - 1u));
          if (pos < kCap) sh.a.cand[pos] = c;
        }
      },
      [](int) {});
  __syncthreads();
  return sh.count;
}

// sh.a.cand[0, n) -> sh.b.sorted[0, n), largest first (n <= kCap).
static __device__ __noinline__ void sort_candidates(Shared& sh, int n) {
  const int t = threadIdx.x;
  if (n <= 256) {  // ranks by comparison, four threads per candidate: cheaper than 16 radix passes
    const int i = t >> 2, part = t & 3;
    uint64_t c = 0;
    int rank = 0;
    if (i < n) {
      c = sh.a.cand[i];
      for (int j = part; j < n; j += 4) rank += sh.a.cand[j] > c;
    }
    rank += __shfl_xor_sync(0xffffffffu, rank, 1);
    rank += __shfl_xor_sync(0xffffffffu, rank, 2);
    if (i < n && part == 0) sh.b.sorted[rank] = c;
  } else {
    uint64_t keys[kItems];
#pragma unroll
    for (int q = 0; q < kItems; ++q) {
      const int p = t * kItems + q;
      keys[q] = p < n ? sh.a.cand[p] : 0ull;  // 0 sorts after every element
    }
    __syncthreads();
    Shared::CandSort(sh.a.cand_sort).SortDescending(keys);
#pragma unroll
    for (int q = 0; q < kItems; ++q) sh.b.sorted[t * kItems + q] = keys[q];
  }
  __syncthreads();
}

// The CPU's steps on sh.b.sorted[0, n): softmax over the first kk (z > 0: the given denominator, for
// a list cut from the whole vocabulary), top-p by a double running sum, min-p, then the draw u.
static __device__ __noinline__ int finish_sorted(Shared& sh, int n, int kk, double z, const SamplingParams& P, double u) {
  const int t = threadIdx.x;
  kk = min(kk, n);
  if (kk <= 0) return -1;  // nothing gathered (NaN logits): the caller falls back to the argmax
  const float mx = comp_x(sh.b.sorted[0]);
  const float inv_t = 1.0f / P.temperature;
  float e[kItems];
  double local = 0.0;
#pragma unroll
  for (int q = 0; q < kItems; ++q) {
    const int r = t * kItems + q;
    e[q] = r < kk ? expf((comp_x(sh.b.sorted[r]) - mx) * inv_t) : 0.0f;
    local += e[q];
  }
  if (z <= 0.0) z = block_reduce(local, sh.rd, [](double x, double y) { return x + y; });
  float p[kItems];
  double tl = 0.0;
#pragma unroll
  for (int q = 0; q < kItems; ++q) {
    p[q] = t * kItems + q < kk ? static_cast<float>(double(e[q]) / z) : 0.0f;
    tl += p[q];
  }
  double cum[kItems];
  double run;
  Shared::ScanD(sh.scan.d).ExclusiveSum(tl, run);
#pragma unroll
  for (int q = 0; q < kItems; ++q) cum[q] = run += p[q];
  if (t == 0) sh.i0 = kk, sh.i1 = INT_MAX, sh.i2 = INT_MAX, sh.f0 = P.min_p * p[0];
  __syncthreads();
  if (P.top_p < 1.0f) {  // smallest prefix whose mass reaches top_p
#pragma unroll
    for (int q = 0; q < kItems; ++q) {
      const int r = t * kItems + q;
      if (r < kk && cum[q] >= double(P.top_p)) {
        atomicMin(&sh.i0, r + 1);
        break;
      }
    }
  }
  __syncthreads();
  int keep = sh.i0;
  if (P.min_p > 0.0f) {  // drop tokens less likely than min_p times the best one
    const float floor = sh.f0;
#pragma unroll
    for (int q = 0; q < kItems; ++q) {
      const int r = t * kItems + q;
      if (r >= 1 && r < keep && p[q] < floor) {
        atomicMin(&sh.i1, r);
        break;
      }
    }
    __syncthreads();
    keep = min(keep, sh.i1);
  }
#pragma unroll
  for (int q = 0; q < kItems; ++q)
    if (t * kItems + q == keep - 1) sh.d0 = cum[q];
  __syncthreads();
  const double target = u * sh.d0;
#pragma unroll
  for (int q = 0; q < kItems; ++q) {
    const int r = t * kItems + q;
    if (r < keep && cum[q] >= target) {
      atomicMin(&sh.i2, r);
      break;
    }
  }
  __syncthreads();
  const int pick = sh.i2 == INT_MAX ? keep - 1 : sh.i2;
  return comp_idx(sh.b.sorted[pick]);
}

// ---- exact fallbacks ----------------------------------------------------------------------------

struct Selected {
  uint64_t c;  // the element where the running weight first reaches the target
  int n_ge;    // elements >= c (within the starting range)
};

// Walks the CPU order over elements >= lo (weight 1, or exp((x - mx) / temperature) when kMass) and
// returns the element where the running weight first reaches target. [lo, hi] holds the answer and
// n_in elements. Each pass counts the weight above 7 pivots; the sub-range holding the target
// becomes the next range, until at most kCap elements remain in it; those are sorted and walked.
template <bool kMass, class T>
static __device__ __noinline__ Selected select_exact(const RowRef<T>& r, const uint32_t* seen, float pen, Shared& sh, float target,
                                 uint64_t lo, uint64_t hi, int n_in, float mx, float a) {
  constexpr int N = RowRef<T>::N;
  constexpr int P = kPivots;
  const int t = threadIdx.x, w = t >> 5, l = t & 31;
  float above = 0.0f;
  int n_above = 0;
  bool by_index = false;
  while (n_in > kCap) {
    uint64_t q[P];
    const float xh = comp_x(hi);
    float xl = comp_x(lo);
    if (!isfinite(xl)) xl = xh - 64.0f / a;  // below: -inf (masked tokens), weight < 2^-64 of the top
    // Pivots evenly spaced in value while the range spans many values, else in the composite order
    // (which also splits ties by index); the composite split always shrinks the range 8x.
    if (!by_index && isfinite(xh) && isfinite(xl) && xh > xl && uint32_t(hi >> 32) - uint32_t(lo >> 32) > 64) {
#pragma unroll
      for (int j = 0; j < P; ++j) {
        const float xj = xh - (xh - xl) * (float(j + 1) / float(P + 1));
        const uint64_t qj = uint64_t(float_key(xj)) << 32;
        q[j] = qj > hi ? hi : (qj <= lo ? lo + 1 : qj);
      }
    } else {
      const uint64_t step = (hi - lo) / (P + 1);
#pragma unroll
      for (int j = 0; j < P; ++j) q[j] = hi - step * (j + 1) + 1;
    }
    float acc[P + 1];
    int cnt[P + 1];
#pragma unroll
    for (int j = 0; j <= P; ++j) acc[j] = 0.0f, cnt[j] = 0;
    for_each_slot(
        r, seen, pen,
        [&](int, int i0, const float (&v)[N], int cn) {
#pragma unroll
          for (int e = 0; e < N; ++e) {
            if (e >= cn || v[e] != v[e]) continue;
            const uint64_t c = composite(v[e], i0 + e);
            if (c < lo || c > hi) continue;
            const float wt = kMass ? fast_exp2((v[e] - mx) * a) : 1.0f;
#pragma unroll
            for (int j = 0; j < P; ++j)
              if (c >= q[j]) acc[j] += wt, ++cnt[j];
            acc[P] += wt, ++cnt[P];
          }
        },
        [](int) {});
#pragma unroll
    for (int j = 0; j <= P; ++j) {
      acc[j] = warp_sum(acc[j]);
      cnt[j] = warp_sum(cnt[j]);
    }
    if (l == 0) {
#pragma unroll
      for (int j = 0; j <= P; ++j) sh.red_f[w][j] = acc[j], sh.red_i[w][j] = cnt[j];
    }
    __syncthreads();
    if (t <= P) {
      float sa = 0.0f;
      int sc = 0;
      for (int i = 0; i < 32; ++i) sa += sh.red_f[i][t], sc += sh.red_i[i][t];
      sh.acc[t] = sa, sh.cnt[t] = sc;
    }
    __syncthreads();
    int js = P;  // the first pivot, from the top, at which the running weight reaches the target
    for (int j = 0; j <= P; ++j)
      if (above + sh.acc[j] >= target) {
        js = j;
        break;
      }
    const uint64_t nhi = js == 0 ? hi : q[js - 1] - 1;
    const uint64_t nlo = js == P ? lo : q[js];
    if (js > 0) above += sh.acc[js - 1], n_above += sh.cnt[js - 1];
    n_in = sh.cnt[js] - (js > 0 ? sh.cnt[js - 1] : 0);
    by_index = nlo == lo && nhi == hi;  // no progress by value: split by composite next
    lo = nlo, hi = nhi;
    __syncthreads();
  }
  const int n = min(gather(r, seen, pen, sh, lo, hi), kCap);
  if (n == 0) return {hi + 1, n_above};
  sort_candidates(sh, n);
  float wt[kItems], tl = 0.0f;
#pragma unroll
  for (int q = 0; q < kItems; ++q) {
    const int rk = t * kItems + q;
    wt[q] = rk < n ? (kMass ? fast_exp2((comp_x(sh.b.sorted[rk]) - mx) * a) : 1.0f) : 0.0f;
    tl += wt[q];
  }
  float run;
  Shared::ScanF(sh.scan.f).ExclusiveSum(tl, run);
  run += above;
  if (t == 0) sh.i2 = INT_MAX;
  __syncthreads();
#pragma unroll
  for (int q = 0; q < kItems; ++q) {
    const int rk = t * kItems + q;
    run += wt[q];
    if (rk < n && run >= target) {
      atomicMin(&sh.i2, rk);
      break;
    }
  }
  __syncthreads();
  const int pick = sh.i2 == INT_MAX ? n - 1 : sh.i2;
  const Selected s{sh.b.sorted[pick], n_above + pick + 1};
  __syncthreads();
  return s;
}

// sum of exp((x - mx) / temperature) over the elements >= thr.
template <class T>
static __device__ __noinline__ float mass_above(const RowRef<T>& r, const uint32_t* seen, float pen, Shared& sh, uint64_t thr, float mx,
                            float a) {
  constexpr int N = RowRef<T>::N;
  float s = 0.0f;
  for_each_slot(
      r, seen, pen,
      [&](int, int i0, const float (&v)[N], int cnt) {
#pragma unroll
        for (int e = 0; e < N; ++e)
          if (e < cnt && v[e] == v[e] && composite(v[e], i0 + e) >= thr) s += fast_exp2((v[e] - mx) * a);
      },
      [](int) {});
  return block_reduce(s, sh.rf, [](float x, float y) { return x + y; });
}

// Draws from the elements >= thr (0: all) with exp((x - mx) / temperature) >= min_p, by inverse CDF:
// one pass sums each chunk's mass, u picks the chunk, and a block scan inside it picks the element.
// Every sum is taken in a fixed order (no float atomics), so the same (seed, step) gives the same token.
template <class T>
static __device__ __noinline__ int draw_above(const RowRef<T>& r, const uint32_t* seen, float pen, Shared& sh, uint64_t thr, float mx,
                          float a, float min_p, double u, int argmax) {
  constexpr int N = RowRef<T>::N;
  const int t = threadIdx.x, warp = t >> 5;
  __syncthreads();
  for (int i = t; i < 32 * kMaxChunks; i += kThreads) (&sh.b.chunk_part[0][0])[i] = 0.0f;
  __syncthreads();
  const float xthr = thr ? comp_x(thr) : -INFINITY;
  auto weight = [&](float x, int i) -> float {
    if (!(x >= xthr) || (thr && composite(x, i) < thr)) return 0.0f;
    const float w = fast_exp2((x - mx) * a);
    return (min_p > 0.0f && w < min_p) ? 0.0f : w;
  };
  float s = 0.0f;
  for_each_slot(
      r, seen, pen,
      [&](int, int i0, const float (&v)[N], int cnt) {
#pragma unroll
        for (int e = 0; e < N; ++e)
          if (e < cnt) s += weight(v[e], i0 + e);
      },
      [&](int j) {
        const float ws = warp_sum(s);
        if ((t & 31) == 0) sh.b.chunk_part[warp][j] += ws;  // this warp's lane 0 only: ordered
        s = 0.0f;
      });
  __syncthreads();
  for (int j = t; j <= r.nit; j += kThreads) {
    float c = 0.0f;
    for (int i = 0; i < 32; ++i) c += sh.b.chunk_part[i][j];
    sh.a.chunk_total[j] = c;
  }
  __syncthreads();
  if (t == 0) {
    double total = 0.0;
    for (int j = 0; j <= r.nit; ++j) total += sh.a.chunk_total[j];
    const double target = u * total;
    double before = 0.0;
    int js = -1, last = -1;
    for (int j = 0; j <= r.nit; ++j) {
      const double c = sh.a.chunk_total[j];
      if (c <= 0.0) continue;
      if (before + c >= target) {
        js = j;
        break;
      }
      before += c, last = j;
    }
    if (js < 0 && last >= 0) js = last, before -= sh.a.chunk_total[last];  // rounding at the very end
    sh.i0 = js, sh.f0 = static_cast<float>(target - before), sh.i1 = INT_MAX, sh.i2 = -1;
  }
  __syncthreads();
  const int js = sh.i0;
  if (js < 0) return argmax;  // nothing has mass (cannot happen for finite logits)
  const float resid = sh.f0;
  float wt[N];
  int i0 = 0;
#pragma unroll
  for (int e = 0; e < N; ++e) wt[e] = 0.0f;
  if (js < r.nit) {
    const int vi = js * kThreads + t;
    if (vi < r.nvec) {
      float v[N];
      unpack16<T>(__ldg(reinterpret_cast<const uint4*>(r.p + r.head) + vi), v);
      i0 = r.head + vi * N;
      if (seen) apply_penalty<N>(v, i0, N, seen, pen);
#pragma unroll
      for (int e = 0; e < N; ++e) wt[e] = weight(v[e], i0 + e);
    }
  } else if (t < r.nscalar) {
    i0 = r.scalar_index(t);
    float v[N];
#pragma unroll
    for (int e = 0; e < N; ++e) v[e] = 0.0f;
    v[0] = to_float(r.p[i0]);
    if (seen) apply_penalty<N>(v, i0, 1, seen, pen);
    wt[0] = weight(v[0], i0);
  }
  float tl = 0.0f;
#pragma unroll
  for (int e = 0; e < N; ++e) tl += wt[e];
  float run;
  Shared::ScanF(sh.scan.f).ExclusiveSum(tl, run);
  // Chunk order is index order, so the first crossing is the smallest index that crosses.
  bool crossed = false;
#pragma unroll
  for (int e = 0; e < N; ++e) {
    if (wt[e] <= 0.0f) continue;
    run += wt[e];
    if (!crossed && run >= resid) atomicMin(&sh.i1, i0 + e), crossed = true;
    atomicMax(&sh.i2, i0 + e);
  }
  __syncthreads();
  return sh.i1 != INT_MAX ? sh.i1 : (sh.i2 >= 0 ? sh.i2 : argmax);
}

// ---- kernels ------------------------------------------------------------------------------------

// logits: [batch, vocab]; out: [batch]. One block per row.
template <class T>
__global__ static void __launch_bounds__(kThreads) argmax_rows_kernel(const T* logits, int vocab, int32_t* out) {
  __shared__ ArgMax scratch[33];
  const RowRef<T> r(logits + size_t(blockIdx.x) * vocab, vocab);
  ArgMax best{-INFINITY, INT_MAX};
  float xmin = INFINITY, m = -INFINITY, s = 0.0f;
  scan_row<T, false>(r, nullptr, 1.0f, 0.0f, best, xmin, m, s);
  best = block_argmax(best, scratch);
  if (threadIdx.x == 0) out[blockIdx.x] = best.i == INT_MAX ? 0 : best.i;  // all -inf: the first
}

// logits: [batch, vocab]; params: [batch]; history: [batch, max_history] (ids outside [0, vocab)
// ignored; history_len: [batch] or null); out: [batch]. One block per row; dynamic shared memory:
// Shared, then the seen-token bitmask ((vocab / 32 + 2) words).
template <class T>
__global__ static void __launch_bounds__(kThreads, 1)
    sample_kernel(const T* logits, int vocab, const SamplingParams* params, const int32_t* history,
                  const int32_t* history_len, int max_history, int32_t* out) {
  extern __shared__ __align__(16) unsigned char smem[];
  Shared& sh = *reinterpret_cast<Shared*>(smem);
  uint32_t* seen_words = reinterpret_cast<uint32_t*>(smem + sizeof(Shared));
  const int row = blockIdx.x, t = threadIdx.x;
  const SamplingParams P = params[row];
  const RowRef<T> r(logits + size_t(row) * vocab, vocab);

  int hlen = 0;
  if (max_history > 0) hlen = history_len ? min(max(history_len[row], 0), max_history) : max_history;
  const float pen = P.repetition_penalty;
  const uint32_t* seen = nullptr;
  if (pen != 1.0f && hlen > 0) {
    for (int i = t; i < (vocab >> 5) + 2; i += kThreads) seen_words[i] = 0;
    __syncthreads();
    const int32_t* h = history + size_t(row) * max_history;
    for (int i = t; i < hlen; i += kThreads) {
      const int id = h[i];
      if (id >= 0 && id < vocab) atomicOr(&seen_words[id >> 5], 1u << (id & 31));
    }
    __syncthreads();
    seen = seen_words;
  }

  const bool greedy = P.temperature <= 0.0f || P.top_k == 1;
  const int k = (P.top_k > 1 && P.top_k < vocab) ? P.top_k : 0;  // 0: no top-k cut
  const bool whole_top_p = !greedy && k == 0 && P.top_p < 1.0f;
  const float a = greedy ? 0.0f : (1.0f / P.temperature) * kLog2e;

  ArgMax best{-INFINITY, INT_MAX};
  float xmin = INFINITY, m = -INFINITY, s = 0.0f;
  if (whole_top_p)
    scan_row<T, true>(r, seen, pen, a, best, xmin, m, s);
  else
    scan_row<T, false>(r, seen, pen, a, best, xmin, m, s);
  const ArgMax top = block_argmax(best, sh.ra);
  if (greedy || top.i == INT_MAX) {  // greedy, or nothing above -inf to sample from
    if (t == 0) out[row] = top.i == INT_MAX ? 0 : top.i;
    return;
  }
  const float mx = top.x;
  xmin = block_reduce(xmin, sh.rf, [](float x, float y) { return fminf(x, y); });
  float z = 0.0f;
  if (whole_top_p)
    z = block_reduce(s > 0.0f ? s * fast_exp2((m - mx) * a) : 0.0f, sh.rf, [](float x, float y) { return x + y; });
  if (t == 0) {
    curandStatePhilox4_32_10_t st;
    curand_init(P.seed, P.step, 0, &st);
    sh.u = curand_uniform_double(&st);  // (0, 1]
  }
  __syncthreads();
  const double u = sh.u;
  const uint64_t cmax = composite(mx, top.i);
  const uint64_t cmin = uint64_t(float_key(xmin)) << 32;

  int pick;
  if (k > 0 && k <= kThreads) {  // top-k from the thread maxima (the common case)
    bool found;
    uint64_t lo = maxima_bound(sh, best, false, k - 1, 0.0f, mx, a, found);
    if (lo == 0) lo = cmin;
    int n = gather(r, seen, pen, sh, lo, ~0ull);
    if (n > kCap) {  // heavy ties above the bound
      lo = select_exact<false>(r, seen, pen, sh, float(k), lo, cmax, n, mx, a).c;
      n = gather(r, seen, pen, sh, lo, ~0ull);
    }
    sort_candidates(sh, n);
    pick = finish_sorted(sh, n, k, 0.0, P, u);
  } else if (k > 0) {  // large top-k
    const uint64_t ck = select_exact<false>(r, seen, pen, sh, float(k), cmin, cmax, vocab, mx, a).c;
    if (k <= kCap) {
      const int n = gather(r, seen, pen, sh, ck, ~0ull);
      sort_candidates(sh, n);
      pick = finish_sorted(sh, n, k, 0.0, P, u);
    } else {
      uint64_t thr = ck;
      bool done = false;
      if (P.top_p < 1.0f) {
        const float zk = mass_above(r, seen, pen, sh, ck, mx, a);
        const Selected sp = select_exact<true>(r, seen, pen, sh, P.top_p * zk, ck, cmax, k, mx, a);
        if (sp.n_ge <= kCap) {
          const int n = gather(r, seen, pen, sh, sp.c, ~0ull);
          sort_candidates(sh, n);
          pick = finish_sorted(sh, n, n, zk, P, u);
          done = true;
        } else {
          thr = sp.c;
        }
      }
      if (!done) pick = draw_above(r, seen, pen, sh, thr, mx, a, P.min_p, u, top.i);
    }
  } else if (P.top_p < 1.0f) {  // top-p over the whole vocabulary
    const float target = P.top_p * z;
    bool found;
    const uint64_t bound = maxima_bound(sh, best, true, 0, target, mx, a, found);
    int n = vocab;
    uint64_t lo = cmin;
    bool done = false;
    if (found) {
      n = gather(r, seen, pen, sh, bound, ~0ull);
      lo = bound;
      if (n <= kCap) {
        sort_candidates(sh, n);
        pick = finish_sorted(sh, n, n, z, P, u);
        done = true;
      }
    }
    if (!done) {
      const Selected sp = select_exact<true>(r, seen, pen, sh, target, lo, cmax, n, mx, a);
      if (sp.n_ge <= kCap) {
        n = gather(r, seen, pen, sh, sp.c, ~0ull);
        sort_candidates(sh, n);
        pick = finish_sorted(sh, n, n, z, P, u);
      } else {
        pick = draw_above(r, seen, pen, sh, sp.c, mx, a, P.min_p, u, top.i);
      }
    }
  } else {  // temperature (and min-p) over the whole vocabulary
    pick = draw_above(r, seen, pen, sh, 0ull, mx, a, P.min_p, u, top.i);
  }
  if (t == 0) out[row] = pick >= 0 ? pick : top.i;
}

inline size_t sample_smem_bytes(int vocab) { return sizeof(Shared) + (size_t(vocab >> 5) + 2) * sizeof(uint32_t); }

}  // namespace sampling_detail

/// out[b] = the first index of the largest logits[b, :] (the CPU's std::max_element).
/// logits: [batch, vocab] device; out: [batch] device. Any vocab in [1, 4Mi]; rows need no alignment.
template <VecElement T>
void argmax_rows(const T* logits, int batch, int vocab, int32_t* out, cudaStream_t stream = nullptr) {
  namespace sd = sampling_detail;
  check(batch >= 0, "argmax_rows: negative batch ", batch);
  check(vocab > 0 && vocab <= sd::kMaxVocab, "argmax_rows: vocab ", vocab, " is not supported (1 to ", sd::kMaxVocab,
        ")");
  if (batch == 0) return;
  sd::argmax_rows_kernel<T><<<batch, sd::kThreads, 0, stream>>>(logits, vocab, out);
  TURBINE_CUDA_CHECK(cudaGetLastError());
}

/// Samples one token per row on the device by the CPU Sampler's rules (see the top of this file).
/// The per-row state lives in shared memory, so the sampler needs no device workspace: it checks
/// sizes against (max_batch, max_vocab <= 1,000,000) and reserves the shared memory that max_vocab
/// needs. sample() is one kernel launch with no host synchronization: capturable in a CUDA graph.
template <VecElement T>
class GpuSampler {
 public:
  /// A sampler for up to max_batch rows of up to max_vocab (<= 1,000,000) logits; raises the
  /// kernel's shared-memory limit to what max_vocab needs, failing if the GPU has less.
  GpuSampler(int max_batch, int max_vocab) : max_batch_(max_batch), max_vocab_(max_vocab) {
    namespace sd = sampling_detail;
    check(max_batch > 0, "GpuSampler: max_batch must be > 0 (got ", max_batch, ")");
    check(max_vocab > 0 && max_vocab <= sd::kMaxSampleVocab, "GpuSampler: vocab ", max_vocab,
          " is not supported (1 to ", sd::kMaxSampleVocab, ")");
    const size_t bytes = sd::sample_smem_bytes(max_vocab);
    int dev = 0, limit = 0;
    TURBINE_CUDA_CHECK(cudaGetDevice(&dev));
    TURBINE_CUDA_CHECK(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    check(bytes <= size_t(limit), "GpuSampler: vocab ", max_vocab, " needs ", bytes,
          " bytes of shared memory per block; this GPU allows ", limit);
  }

  /// Rows per sample() call, at most.
  int max_batch() const { return max_batch_; }
  /// Vocabulary size per row, at most.
  int max_vocab() const { return max_vocab_; }

  /// logits: [batch, vocab] device; params: [batch] device; history: [batch, max_history] device
  /// token ids (-1 or any id outside [0, vocab) is padding), used by the repetition penalty;
  /// history_len: [batch] device valid lengths, or null to use all max_history columns; out_ids:
  /// [batch] device.
  void sample(const T* logits, int batch, int vocab, const SamplingParams* params, const int32_t* history,
              const int32_t* history_len, int max_history, int32_t* out_ids, cudaStream_t stream = nullptr) const {
    namespace sd = sampling_detail;
    check(batch >= 0 && batch <= max_batch_, "GpuSampler::sample: batch ", batch, " is outside [0, ", max_batch_,
          "]");
    check(vocab > 0 && vocab <= max_vocab_, "GpuSampler::sample: vocab ", vocab, " is outside [1, ", max_vocab_, "]");
    check(max_history >= 0 && (max_history == 0 || history != nullptr),
          "GpuSampler::sample: history is null with max_history ", max_history);
    if (batch == 0) return;
    // The limit is raised here, in the function that launches: the kernel is static (one copy per
    // translation unit), and a program with two CUDA translation units may link this function
    // from one and the constructor from the other (seen on an H200: "invalid argument").
    const size_t smem = sd::sample_smem_bytes(vocab);
    if (smem > 48 * 1024) {
      static std::atomic<size_t> raised[64];
      int dev = 0;
      TURBINE_CUDA_CHECK(cudaGetDevice(&dev));
      if (smem > raised[dev & 63].load(std::memory_order_acquire)) {
        TURBINE_CUDA_CHECK(cudaFuncSetAttribute(sd::sample_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                static_cast<int>(sd::sample_smem_bytes(max_vocab_))));
        raised[dev & 63].store(sd::sample_smem_bytes(max_vocab_), std::memory_order_release);
      }
    }
    sd::sample_kernel<T><<<batch, sd::kThreads, smem, stream>>>(
        logits, vocab, params, history, history_len, max_history, out_ids);
    TURBINE_CUDA_CHECK(cudaGetLastError());
  }

 private:
  int max_batch_;
  int max_vocab_;
};

}  // namespace turbine::cuda
