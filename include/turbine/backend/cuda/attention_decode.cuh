#pragma once
// Decode attention for a batch of sequences, split along the sequence (flash-decoding). Each block
// takes one (split, kv head, sequence) and runs all query rows of that KV group (group heads times
// up to 8 queries per sequence) as a small flash-attention problem on tensor cores: the K/V chunk
// streams through a cp.async pipeline of 16-byte copies, each warp keeps an online softmax over its
// share of positions, the warps merge in shared memory and the block writes a partial (output,
// log-sum-exp) to a workspace; a second kernel merges the splits. For the decode step of small
// models, where every launch counts, the merge can be folded into the split kernel instead
// (DecodeOptions::counters): the last block to finish a (sequence, KV head) merges its splits (a
// counter per pair, reset by that block, so graph replays find it at zero), and a sequence that fits
// one split writes its output directly. With DecodeOptions::pdl the launch overlaps the previous
// kernel's tail (programmatic dependent launch) and lets the next kernel start early. Where the
// blocks are few (batch-1 decode: one per KV head), a block of 4 warps is a chain of dependent
// steps with one warp per scheduler; blocks of 8 warps then take two tiles at once
// (DecodeOptions::block_warps; the launcher's choice with f16/bf16 caches).
//
// Lengths are read on the device, so a launch captured in a CUDA graph stays valid while lengths
// change between replays: the grid is sized once for the plan's maximum length, each sequence
// divides its own length over the splits, and blocks past its end exit at once.
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "attention_prefill.cuh"
#include "device_buffer.cuh"
#include "kv_quant.cuh"
#include "vec.cuh"

namespace turbine::cuda {

/// Fixed at planning (and graph-capture) time: the grid is (splits, kv_heads, batch).
struct DecodePlan {
  AttentionShape shape;  ///< heads, KV heads, head_dim and sliding window of the layer
  int queries = 1;      ///< new tokens per sequence (1; up to 8 for speculative decoding)
  int max_batch = 0;    ///< sequences per launch, at most
  int64_t max_len = 0;  ///< cache positions per sequence, at most
  int splits = 1;       ///< blocks along the sequence for the longest sequence
};

namespace attn {

inline constexpr int kDecodeTile = 64;  // cache positions per pipeline stage

/// How one sequence's cache positions are divided over the splits (see decode_span()).
struct DecodeSpan {
  ///@{
  int lo, chunk, splits;  ///< first position read, positions per split, splits used
  ///@}
};

// How a sequence of `len` positions is divided: at most max_splits chunks of whole tiles, at least
// min_tiles tiles each (fewer splits: a short sequence skips the merge), starting at the first
// position any of its queries can see. Both kernels compute it from the same inputs.
__host__ __device__ inline DecodeSpan decode_span(int len, int queries, int window, int max_splits, int min_tiles = 1) {
  const int lo = window > 0 ? max(0, len - queries - window + 1) : 0;
  const int tiles = (max(0, len - lo) + kDecodeTile - 1) / kDecodeTile;
  const int per = max((tiles + max_splits - 1) / max_splits, min(min_tiles, tiles));
  return {lo, per * kDecodeTile, per > 0 ? (tiles + per - 1) / per : 0};
}

/// The kernel arguments of one decode-attention launch (filled by attention_decode()).
template <class T>
struct DecodeArgs {
  const T* q;            ///< [batch, queries, heads, HD]
  const T* const* k;     ///< [batch] -> [positions, kv_stride], kv head h at + h * HD
  const T* const* v;     ///< [batch] -> [positions, kv_stride]
  const int* lengths;    ///< [batch] positions in each cache, the new tokens' included
  float* part_o;         ///< [batch, splits, queries, heads, HD]  normalized partial outputs
  float* part_lse;       ///< [batch, splits, queries, heads]      log2-sum-exp2 of scaled scores
  T* out;                ///< [batch, queries, heads, HD]
  unsigned* counters;    ///< [batch, kv_heads] finished splits, or null: decode_combine_kernel merges
  int prefetch_kv;       ///< read lengths and the cache before the new tokens before the PDL wait
  int min_tiles;         ///< tiles per split at least (decode_span)
  int64_t kv_stride;     ///< elements between consecutive cache rows (bytes with a quantized cache)
  PagedKvTable table;    ///< paged caches: position p of sequence b is row table.row(b, p); no table: row p
  /// query heads; query heads per KV head; new tokens per sequence; sliding window (0: none);
  /// splits of the plan (the grid's x extent)
  ///@{
  int heads, group, queries, window, splits;
  ///@}
  float scale_log2;  ///< softmax scale 1/sqrt(head_dim) times log2(e): scores are exponentiated with exp2
};

// MT m16 tiles hold the group*queries rows (padded); each group of 4 warps splits as MT along
// rows times 4/MT along the 64 positions of a tile. NS pipeline stages. kWarps 8: two warp groups
// take two tiles at once (tiles 2i and 2i + 1), for launches of so few blocks that a block's chain
// of dependent instructions, one warp per scheduler, is the attention's time.
/// The tiling of decode_split_kernel for head_dim HD, MT row tiles, NS pipeline stages and kWarps
/// warps (4 or 8); with a quantized KV scheme (decode_split_quant_kernel) the NS stages hold codes
/// and params only.
template <class T, int HD, int MT, int NS, class KV = kv::Same, int kWarps = 4>
struct DecodeConfig {
  static_assert(kWarps == 4 || (kWarps == 8 && NS >= 4), "decode: 4 warps, or 8 over at least 4 stages");
  /// threads per block; warp groups (tiles in work at once); warps of a group along the positions
  /// of a tile; positions per warp and tile; query rows held (16 per m16 tile)
  ///@{
  static constexpr int kThreads = 32 * kWarps, kGroups = kWarps / 4, kWN = 4 / MT, kKW = kDecodeTile / kWN,
                       kRows = 16 * MT;
  ///@}
  /// shared memory of the Q tile plus the K/V pipeline, in bytes (quantized: the stages only, q
  /// goes straight to registers)
  static constexpr size_t kPipeBytes = KV::quantized ? NS * kvq::frag_stage_bytes<KV, HD, kDecodeTile>()
                                                     : size_t(kRows + 2 * NS * kDecodeTile) * HD * sizeof(T);
  /// shared memory of the cross-warp softmax merge, in bytes
  static constexpr size_t kMergeBytes = size_t(kWarps) * 16 * (HD + 4) * sizeof(float) + 2 * kWarps * 16 * sizeof(float);
  /// dynamic shared memory per block, in bytes: the larger of the two phases (they reuse it)
  static constexpr size_t kSmemBytes = kPipeBytes > kMergeBytes ? kPipeBytes : kMergeBytes;
};

// The merge of one (sequence, KV head)'s splits by one block of kThreads threads: a warp per query
// row finds the maximum and the sum of the split weights, then each thread combines 4 dims of a row.
// The partials were written by other blocks of this launch: read through L2 (ld.cg), never L1.
template <class T, int HD, int kThreads = 128>
__device__ __forceinline__ void decode_merge_group(const DecodeArgs<T>& a, int b, int g, int ns) {
  constexpr int kMaxRows = 64, kLanes = HD / 4;
  __shared__ float row_max[kMaxRows], row_inv[kMaxRows];
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int rows = a.group * a.queries;
  const int64_t stride = int64_t(a.queries) * a.heads;  // between splits, in rows
  auto first_row = [&](int r) {
    return int64_t(b) * a.splits * stride + int64_t(r / a.group) * a.heads + g * a.group + r % a.group;
  };
  for (int r = warp; r < rows; r += kThreads / 32) {
    const int64_t first = first_row(r);
    float mx = -INFINITY;
    for (int s = lane; s < ns; s += 32) mx = fmaxf(mx, __ldcg(a.part_lse + first + s * stride));
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    float den = 0.f;
    if (mx != -INFINITY)
      for (int s = lane; s < ns; s += 32) den += fast_exp2(__ldcg(a.part_lse + first + s * stride) - mx);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) den += __shfl_xor_sync(0xffffffffu, den, o);
    if (lane == 0) {
      row_max[r] = mx;
      row_inv[r] = den > 0.f ? 1.f / den : 0.f;
    }
  }
  __syncthreads();
  for (int i = tid; i < rows * kLanes; i += kThreads) {
    const int r = i / kLanes, d = (i % kLanes) * 4;
    const int64_t first = first_row(r);
    const float mx = row_max[r], inv = row_inv[r];
    float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
    if (inv > 0.f) {
#pragma unroll 4
      for (int s = 0; s < ns; ++s) {
        const int64_t row = first + s * stride;
        const float w = fast_exp2(__ldcg(a.part_lse + row) - mx);
        const float4 v = __ldcg(reinterpret_cast<const float4*>(a.part_o + row * HD + d));
        acc.x += w * v.x;
        acc.y += w * v.y;
        acc.z += w * v.z;
        acc.w += w * v.w;
      }
    }
    uint2 packed;
    packed.x = pack2<T>(acc.x * inv, acc.y * inv);
    packed.y = pack2<T>(acc.z * inv, acc.w * inv);
    const int j = r / a.group, hh = g * a.group + r % a.group;
    *reinterpret_cast<uint2*>(a.out + ((int64_t(b) * a.queries + j) * a.heads + hh) * HD + d) = packed;
  }
}

// The online-softmax step of one tile for the thread's two rows: s holds the scores of the warp's
// kKW positions (column j*8 + 2*tig + e is position n0 + j*8 + 2*tig + e); positions outside a row's
// [lo_r, hi_r] are masked, o and l are rescaled, and s is left holding p = exp2(scaled score - max).
// What it leaves out, because the decode kernels issue close to their schedulers' peak (Nsight
// Compute, int4 cache, H100, 2026-12-05): rows 8-15 of the m16 tile when the warp holds no row
// there (rows_hi false: a group of <= 8 query heads and one query, e.g. Llama-3-8B's 4; their p is
// left 0, so their o stays 0), the mask on a tile that lies inside both rows' ranges, and the
// rescale of o when no lane's maximum moved (the common case once a few tiles are in).
template <int NJ, int ND>
__device__ __forceinline__ void decode_softmax(float (&s)[NJ][4], float (&m)[2], float (&l)[2], float (&o)[ND][4], int n0,
                                               int tig, const int (&lo_r)[2], const int (&hi_r)[2], float scale_log2,
                                               bool rows_hi) {
#pragma unroll
  for (int rr = 0; rr < 2; ++rr) {
    if (rr == 1 && !rows_hi) {  // warp-uniform
#pragma unroll
      for (int j = 0; j < NJ; ++j) s[j][2] = s[j][3] = 0.f;
      break;
    }
    if (n0 < lo_r[rr] || n0 + NJ * 8 - 1 > hi_r[rr]) {
#pragma unroll
      for (int j = 0; j < NJ; ++j)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int kp = n0 + j * 8 + tig * 2 + e;
          if (kp < lo_r[rr] || kp > hi_r[rr]) s[j][2 * rr + e] = -INFINITY;
        }
    }
    float mx = m[rr];
#pragma unroll
    for (int j = 0; j < NJ; ++j) mx = fmaxf(mx, fmaxf(s[j][2 * rr], s[j][2 * rr + 1]));
    mx = quad_max(mx);
    const float base = mx == -INFINITY ? 0.f : mx * scale_log2;
    const float alpha = m[rr] == mx ? 1.f : fast_exp2(m[rr] * scale_log2 - base);
    m[rr] = mx;
    float sum = 0.f;
#pragma unroll
    for (int j = 0; j < NJ; ++j)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const float p = fast_exp2(fmaf(s[j][2 * rr + e], scale_log2, -base));
        s[j][2 * rr + e] = p;
        sum += p;
      }
    l[rr] = l[rr] * alpha + sum;
    if (__any_sync(0xffffffffu, alpha != 1.f)) {
#pragma unroll
      for (int j = 0; j < ND; ++j) {
        o[j][2 * rr] *= alpha;
        o[j][2 * rr + 1] *= alpha;
      }
    }
  }
}

// Each thread's two rows [lo_r, hi_r]: the positions of this split that the row's query sees.
template <class T>
__device__ __forceinline__ void decode_row_ranges(const DecodeArgs<T>& a, int len, int start, int end, int row0, int gid,
                                                  int (&lo_r)[2], int (&hi_r)[2]) {
#pragma unroll
  for (int rr = 0; rr < 2; ++rr) {
    const int r = row0 + gid + rr * 8;
    const int qpos = len - a.queries + min(r / a.group, a.queries - 1);
    hi_r[rr] = min(qpos, end - 1);
    lo_r[rr] = a.window > 0 ? max(start, qpos - a.window + 1) : start;
  }
}

// The end of a split block: the warps merge their (o, m, l) in shared memory (reusing the
// pipeline's), the block writes its partial (or, as the only split with counters, the output), and
// with counters the last block of the (sequence, KV head) merges the splits. kPermuted: o's column c
// of n-block j is dim c * HD/8 + j (the quantized kernel's V order), else dim j * 8 + c.
template <class T, int HD, int MT, bool kPermuted, int kWarps = 4>
__device__ __forceinline__ void decode_epilogue(const DecodeArgs<T>& a, unsigned char* smem_raw, const float (&o)[HD / 8][4],
                                                const float (&m)[2], const float (&l)[2], const DecodeSpan& span, int split,
                                                int b, int g) {
  // Every warp of row tile rt (warps rt, rt + MT, ...) holds a softmax state over its own positions.
  constexpr int kWN = kWarps / MT, kThreads = 32 * kWarps;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, gid = lane >> 2, tig = lane & 3;
  const int rows = a.group * a.queries;
  cp_async_wait<0>();
  __syncthreads();  // the pipeline's shared memory now holds the warps' partial results

  float* const red_o = reinterpret_cast<float*>(smem_raw);  // [kWarps][16][HD + 4]
  float* const red_m = red_o + kWarps * 16 * (HD + 4);       // [kWarps][16]
  float* const red_l = red_m + kWarps * 16;                  // [kWarps][16]
#pragma unroll
  for (int rr = 0; rr < 2; ++rr) {
    const int r = gid + rr * 8;
    const float sum = quad_sum(l[rr]);
    if (tig == 0) {
      red_m[warp * 16 + r] = m[rr] == -INFINITY ? -INFINITY : m[rr] * a.scale_log2;
      red_l[warp * 16 + r] = sum;
    }
    float* const dst = red_o + (warp * 16 + r) * (HD + 4);
#pragma unroll
    for (int j = 0; j < HD / 8; ++j) {
      if constexpr (kPermuted) {
        dst[(tig * 2) * (HD / 8) + j] = o[j][2 * rr];
        dst[(tig * 2 + 1) * (HD / 8) + j] = o[j][2 * rr + 1];
      } else {
        *reinterpret_cast<float2*>(dst + j * 8 + tig * 2) = make_float2(o[j][2 * rr], o[j][2 * rr + 1]);
      }
    }
  }
  __syncthreads();

  const bool direct = a.counters != nullptr && span.splits == 1;  // the only split: no merge needed
  for (int i = tid; i < rows * HD; i += kThreads) {
    const int r = i / HD, d = i % HD, rt = r / 16, ri = r % 16;
    float mx = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWN; ++w) mx = fmaxf(mx, red_m[(rt + w * MT) * 16 + ri]);
    float acc = 0.f, den = 0.f;
    if (mx != -INFINITY) {
#pragma unroll
      for (int w = 0; w < kWN; ++w) {
        const int wi = (rt + w * MT) * 16 + ri;
        const float f = fast_exp2(red_m[wi] - mx);
        acc += f * red_o[wi * (HD + 4) + d];
        den += f * red_l[wi];
      }
    }
    const int j = r / a.group, hh = g * a.group + r % a.group;
    if (direct) {
      a.out[((int64_t(b) * a.queries + j) * a.heads + hh) * HD + d] = from_float<T>(den > 0.f ? acc / den : 0.f);
      continue;
    }
    const int64_t row = ((int64_t(b) * a.splits + split) * a.queries + j) * a.heads + hh;
    a.part_o[row * HD + d] = den > 0.f ? acc / den : 0.f;
    if (d == 0) a.part_lse[row] = den > 0.f ? mx + __log2f(den) : -INFINITY;
  }
  if (a.counters == nullptr || direct) return;

  // Folded merge: the last of the span.splits blocks of this (sequence, KV head) merges them.
  __shared__ bool last;
  __threadfence();  // this block's partials are visible device-wide before it is counted
  __syncthreads();
  unsigned* const counter = a.counters + int64_t(b) * gridDim.y + g;
  if (tid == 0) last = atomicAdd(counter, 1u) == unsigned(span.splits - 1);
  __syncthreads();
  if (!last) return;
  __threadfence();  // the other blocks' partials are read after their count
  if (tid == 0) *counter = 0;  // ready for the next launch (a graph replay, the next layer)
  decode_merge_group<T, HD, kThreads>(a, b, g, span.splits);
}

// The first NS - 1 tiles of the cp.async ring. With prefetch_kv (PDL), the cache rows written
// before this step go out before the wait for the previous kernel and the new tokens' rows (and
// `load_after_wait`, e.g. q) after it, and all of them are waited for; without it, every row after
// the wait, which the caller did. load_kv(tile, stage, part): part 0 every row, 1 all but the new
// tokens', 2 only those (see decode_split_kernel).
template <int NS, class LoadKv, class LoadAfterWait>
__device__ __forceinline__ void decode_prologue(bool prefetch_kv, int n_tiles, LoadKv&& load_kv,
                                                LoadAfterWait&& load_after_wait) {
  if (prefetch_kv) {
#pragma unroll
    for (int s = 0; s < NS - 1; ++s) {
      if (s < n_tiles) load_kv(s, s, 1);
      cp_async_commit();
    }
    pdl_wait();
    load_after_wait();
#pragma unroll
    for (int s = 0; s < NS - 1; ++s)
      if (s < n_tiles) load_kv(s, s, 2);
    cp_async_commit();
    cp_async_wait<0>();  // the first NS - 1 tiles are in (the loop's barrier publishes them)
  } else {
    load_after_wait();
#pragma unroll
    for (int s = 0; s < NS - 1; ++s) {
      if (s < n_tiles) load_kv(s, s, 0);
      cp_async_commit();
    }
  }
}

// Tile `it` of the ring is in and visible to every warp (and the stage it leaves is free): then
// the load of tile it + NS - 1 goes out into that stage.
template <int NS, class LoadKv>
__device__ __forceinline__ void decode_ring_step(int it, int n_tiles, LoadKv&& load_kv) {
  cp_async_wait<NS - 2>();
  __syncthreads();
  const int nxt = it + NS - 1;
  if (nxt < n_tiles) load_kv(nxt, nxt % NS, 0);
  cp_async_commit();
}

// decode_ring_step for kG warp groups that take kG tiles a round (it0 .. it0 + kG - 1, in and
// visible after the barrier): the tiles up to it0 + NS - 1 go out into the stages the previous
// round left, one commit group each (the prologue issued tiles 0 .. NS - 2). Before the barrier,
// the groups of tiles past it0 + kG - 1 may still be in flight: NS - 2kG of them from round 1 on,
// NS - 1 - kG (at least as many) in round 0.
template <int NS, int kG, class LoadKv>
__device__ __forceinline__ void decode_ring_round(int it0, int n_tiles, LoadKv&& load_kv) {
  if constexpr (kG == 1) {
    decode_ring_step<NS>(it0, n_tiles, load_kv);
  } else {
    static_assert(NS >= 2 * kG, "decode: a round's tiles and the next round's loads must fit the stages");
    cp_async_wait<NS - 2 * kG>();
    __syncthreads();
    for (int t = it0 == 0 ? NS - 1 : it0 - kG + NS; t < it0 + NS; ++t) {
      if (t < n_tiles) load_kv(t, t % NS, 0);
      cp_async_commit();
    }
  }
}

// The probabilities of m16 x k16 block kk (score fragments 2kk, 2kk + 1) as an mma A fragment.
template <class T, int NJ>
__device__ __forceinline__ void decode_p_fragment(const float (&s)[NJ][4], int kk, uint32_t (&pf)[4]) {
  pf[0] = pack2<T>(s[2 * kk][0], s[2 * kk][1]);
  pf[1] = pack2<T>(s[2 * kk][2], s[2 * kk][3]);
  pf[2] = pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]);
  pf[3] = pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3]);
}

template <class T, int HD, int MT, int NS, int kWarps = 4>
__global__ static void __launch_bounds__(kWarps * 32) decode_split_kernel(const DecodeArgs<T> a) {
  using Cfg = DecodeConfig<T, HD, MT, NS, kv::Same, kWarps>;
  constexpr int kBN = kDecodeTile, kCh = HD / 8, kKW = Cfg::kKW, kRows = Cfg::kRows, kThreads = Cfg::kThreads;
  constexpr int kG = Cfg::kGroups;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  T* const sq = reinterpret_cast<T*>(smem_raw);  // [kRows][HD] swizzled
  T* const sk = sq + kRows * HD;                 // [NS][BN][HD]
  T* const sv = sk + NS * kBN * HD;              // [NS][BN][HD]

  pdl_launch_dependents();  // the next kernel may start its weight prefetch
  // q, the caches and the lengths may come from the previous kernels. With prefetch_kv only q and
  // the newest `queries` positions do: the cache before them is loaded before the wait.
  if (!a.prefetch_kv) pdl_wait();
  const int split = blockIdx.x, g = blockIdx.y, b = blockIdx.z;
  const int len = a.lengths[b];
  const DecodeSpan span = decode_span(len, a.queries, a.window, a.splits, a.min_tiles);
  if (split >= span.splits) return;  // (the blocks that work wait, so our completion still implies the previous kernel's)
  const int start = span.lo + split * span.chunk;
  const int end = min(start + span.chunk, len);
  const int n_tiles = (end - start + kBN - 1) / kBN;
  const int rows = a.group * a.queries;
  const int fresh = len - a.queries;  // positions [fresh, len) hold the new tokens

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int gid = lane >> 2, tig = lane & 3;

  // Q rows r = query * group + head-in-group; rows past `rows` are zeros.
  constexpr int kQLoads = (kRows * kCh + kThreads - 1) / kThreads;  // (a partial last round: 8 warps, 16 rows of 64)
  static_assert((kBN * kCh) % kThreads == 0);
  auto load_q = [&] {
#pragma unroll
    for (int k = 0; k < kQLoads; ++k) {
      const int i = tid + k * kThreads, r = i / kCh, c = i % kCh;
      if ((kRows * kCh) % kThreads != 0 && i >= kRows * kCh) break;
      const bool ok = r < rows;
      const int j = ok ? r / a.group : 0, hh = ok ? g * a.group + r % a.group : 0;
      const T* src = a.q + ((int64_t(b) * a.queries + j) * a.heads + hh) * HD + c * 8;
      cp_async16(smem_u32(sq + swz<HD>(r, c)), src, ok);
    }
  };
  const T* const kbase = a.k[b] + int64_t(g) * HD;
  const T* const vbase = a.v[b] + int64_t(g) * HD;
  // part 0: every row of the tile (rows past `end` zeroed); 1: all but the new tokens' rows (before
  // the wait); 2: only the new tokens' rows (after it). A row is written by one copy only: two
  // copies to one address could land in either order.
  auto load_kv = [&](int tile, int stage, int part) {
    const int n0 = start + tile * kBN;
    T* const dk = sk + stage * kBN * HD;
    T* const dv = sv + stage * kBN * HD;
#pragma unroll
    for (int k = 0; k < kBN * kCh / kThreads; ++k) {
      const int i = tid + k * kThreads, r = i / kCh, c = i % kCh, p = n0 + r;
      const bool ok = p < end;
      const bool is_new = ok && p >= fresh;
      if ((part == 1 && is_new) || (part == 2 && !is_new)) continue;
      const int64_t off = a.table.row(b, ok ? p : 0) * a.kv_stride + c * 8;
      cp_async16(smem_u32(dk + swz<HD>(r, c)), kbase + off, ok);
      cp_async16(smem_u32(dv + swz<HD>(r, c)), vbase + off, ok);
    }
  };
  decode_prologue<NS>(a.prefetch_kv, n_tiles, load_kv, load_q);  // q goes with the first tiles

  // The warp's group (the tiles it takes: grp, grp + kG, ...), m tile and slice of each tile.
  const int grp = warp / 4, mt = (warp % 4) % MT, ks = (warp % 4) / MT;
  int lo_r[2], hi_r[2];
  decode_row_ranges(a, len, start, end, mt * 16, gid, lo_r, hi_r);
  const bool rows_hi = mt * 16 + 8 < a.group * a.queries;  // the warp holds a row in 8-15 of its m16 tile

  float o[HD / 8][4];
#pragma unroll
  for (int j = 0; j < HD / 8; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  uint32_t qf[HD / 16][4];

  for (int it0 = 0; it0 < n_tiles; it0 += kG) {
    decode_ring_round<NS, kG>(it0, n_tiles, load_kv);
    if (it0 == 0) {
#pragma unroll
      for (int kk = 0; kk < HD / 16; ++kk)
        ldmatrix_x4(qf[kk], smem_u32(sq + swz<HD>(mt * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, kk * 2 + (lane >> 4))));
    }
    const int it = it0 + grp;
    if (it >= n_tiles) continue;  // warp-uniform: this group has no tile in the last round
    const int stage = it % NS;
    const T* const ks_tile = sk + stage * kBN * HD + ks * kKW * HD;
    const T* const vs_tile = sv + stage * kBN * HD + ks * kKW * HD;
    const int n0 = start + it * kBN + ks * kKW;

    float s[kKW / 8][4];
#pragma unroll
    for (int j = 0; j < kKW / 8; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < HD / 16; ++kk)
#pragma unroll
      for (int np = 0; np < kKW / 16; ++np) {
        uint32_t bf[4];
        // Rows of the warp's slice start at a multiple of 16, so the swizzle sees the same row & 7.
        ldmatrix_x4(bf, smem_u32(ks_tile + swz<HD>(np * 16 + (lane & 7) + ((lane >> 4) << 3), kk * 2 + ((lane >> 3) & 1))));
        mma16816<T>(s[2 * np], qf[kk], bf[0], bf[1]);
        mma16816<T>(s[2 * np + 1], qf[kk], bf[2], bf[3]);
      }

    decode_softmax(s, m, l, o, n0, tig, lo_r, hi_r, a.scale_log2, rows_hi);

#pragma unroll
    for (int kk = 0; kk < kKW / 16; ++kk) {
      uint32_t pf[4];
      decode_p_fragment<T>(s, kk, pf);
#pragma unroll
      for (int dp = 0; dp < HD / 16; ++dp) {
        uint32_t bf[4];
        ldmatrix_x4_trans(bf, smem_u32(vs_tile + swz<HD>(kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, dp * 2 + (lane >> 4))));
        mma16816<T>(o[2 * dp], pf, bf[0], bf[1]);
        mma16816<T>(o[2 * dp + 1], pf, bf[2], bf[3]);
      }
    }
  }
  decode_epilogue<T, HD, MT, false, kWarps>(a, smem_raw, o, m, l, span, split, b, g);
}

// The warp's Q rows row0 + gid (+ 8) as mma A fragments, straight from global memory, in the k order
// of kvq::FragTile's key fragments: k-slots 2tig, 2tig+1 (+8: +2) of step kk are dims
// tig * HD/4 + 4kk + {0, 1} ({2, 3}), i.e. 8 contiguous bytes of the row per step. qsum: the row's
// q summed over all dims (the folded keys' min term), rows past `rows` zeros.
template <class T, int HD>
__device__ __forceinline__ void load_q_permuted(const DecodeArgs<T>& a, int b, int g, int row0, int gid, int tig,
                                                uint32_t (&qf)[HD / 16][4], float (&qsum)[2]) {
  const int rows = a.group * a.queries;
#pragma unroll
  for (int rr = 0; rr < 2; ++rr) {
    const int r = row0 + gid + rr * 8;
    uint4 u[HD / 32];
#pragma unroll
    for (int i = 0; i < HD / 32; ++i) u[i] = make_uint4(0, 0, 0, 0);
    if (r < rows) {
      const T* const src = a.q + ((int64_t(b) * a.queries + r / a.group) * a.heads + g * a.group + r % a.group) * HD + tig * (HD / 4);
#pragma unroll
      for (int i = 0; i < HD / 32; ++i) u[i] = reinterpret_cast<const uint4*>(src)[i];
    }
    const uint32_t* const w = reinterpret_cast<const uint32_t*>(u);
    float sum = 0.f;
#pragma unroll
    for (int i = 0; i < HD / 8; ++i) {
      qf[i / 2][(i % 2) * 2 + rr] = w[i];
      if constexpr (std::is_same_v<T, __half>) {
        const float2 f = __half22float2(kvq::u2h2(w[i]));
        sum += f.x + f.y;
      }
    }
    qsum[rr] = quad_sum(sum);
  }
}

// decode_split_kernel over a quantized cache (kv_quant.cuh): the stages hold codes and params in
// kvq::FragTile's fragment order, and each warp dequantizes in registers straight into the mma B
// fragments of its positions (keys as B of S = Q K^T with Q's dims permuted to match, values as B
// of O = P V with O's dims permuted, undone by the epilogue). One barrier per round of tiles, as the
// f16 path.
template <class T, int HD, int MT, int NS, class KV, int kWarps = 4>
__global__ static void __launch_bounds__(kWarps * 32) decode_split_quant_kernel(const DecodeArgs<T> a) {
  using Cfg = DecodeConfig<T, HD, MT, NS, KV, kWarps>;
  using Tile = kvq::FragTile<KV, HD, kDecodeTile>;
  constexpr int kBN = kDecodeTile, kKW = Cfg::kKW, kG = Cfg::kGroups;
  constexpr bool kFold = Tile::template kFoldK<T>;
  extern __shared__ __align__(128) unsigned char smem_raw[];  // [NS] FragTile stages

  pdl_launch_dependents();
  if (!a.prefetch_kv) pdl_wait();  // see decode_split_kernel
  const int split = blockIdx.x, g = blockIdx.y, b = blockIdx.z;
  const int len = a.lengths[b];
  const DecodeSpan span = decode_span(len, a.queries, a.window, a.splits, a.min_tiles);
  if (split >= span.splits) return;
  const int start = span.lo + split * span.chunk;
  const int end = min(start + span.chunk, len);
  const int n_tiles = (end - start + kBN - 1) / kBN;
  const int fresh = len - a.queries;

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int gid = lane >> 2, tig = lane & 3;
  const unsigned char* const kpool = reinterpret_cast<const unsigned char*>(a.k[b]);
  const unsigned char* const vpool = reinterpret_cast<const unsigned char*>(a.v[b]);
  // parts as in decode_split_kernel. The first 4 warps load (FragTile::load's shuffles want whole
  // warps over its rows: with 8 warps a warp's rows would not fill them at every size).
  auto load_kv = [&](int tile, int stage, int part) {
    const int n0 = start + tile * kBN;
    if (warp >= 4) return;  // warp-uniform
    Tile::template load<128>(smem_raw + stage * Tile::kBytes, kpool, vpool, a.kv_stride, gridDim.y, g, tid,
                                  [&](int r, bool& ok) -> int64_t {
                                    const int p = n0 + r;
                                    ok = p < end;
                                    const bool is_new = ok && p >= fresh;
                                    if ((part == 1 && is_new) || (part == 2 && !is_new)) return -1;
                                    return a.table.row(b, ok ? p : 0);
                                  });
  };
  decode_prologue<NS>(a.prefetch_kv, n_tiles, load_kv, [] {});

  const int grp = warp / 4, mt = (warp % 4) % MT, ks = (warp % 4) / MT;  // as decode_split_kernel
  uint32_t qf[HD / 16][4];
  float qsum[2];
  load_q_permuted<T, HD>(a, b, g, mt * 16, gid, tig, qf, qsum);  // after the wait (q is the previous kernel's)
  int lo_r[2], hi_r[2];
  decode_row_ranges(a, len, start, end, mt * 16, gid, lo_r, hi_r);
  const bool rows_hi = mt * 16 + 8 < a.group * a.queries;  // the warp holds a row in 8-15 of its m16 tile

  float o[HD / 8][4];
#pragma unroll
  for (int j = 0; j < HD / 8; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};

  for (int it0 = 0; it0 < n_tiles; it0 += kG) {
    decode_ring_round<NS, kG>(it0, n_tiles, load_kv);
    const int it = it0 + grp;
    if (it >= n_tiles) continue;  // warp-uniform: this group has no tile in the last round
    const unsigned char* const st = smem_raw + (it % NS) * Tile::kBytes;
    const int r0 = ks * kKW;  // the warp's first row of the tile
    const int n0 = start + it * kBN + r0;

    float s[kKW / 8][4];
#pragma unroll
    for (int j = 0; j < kKW / 8; ++j) {
      s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
      uint32_t bk[HD / 16][2];
      Tile::template k_frags<T>(st, r0 + j * 8 + gid, tig, bk);
#pragma unroll
      for (int kk = 0; kk < HD / 16; ++kk) mma16816<T>(s[j], qf[kk], bk[kk][0], bk[kk][1]);
      if constexpr (kFold) Tile::k_fold(st, r0 + j * 8 + tig * 2, qsum, s[j]);
    }

    decode_softmax(s, m, l, o, n0, tig, lo_r, hi_r, a.scale_log2, rows_hi);

#pragma unroll
    for (int kk = 0; kk < kKW / 16; ++kk) {
      uint32_t pf[4];
      decode_p_fragment<T>(s, kk, pf);
      uint32_t bv[HD / 8][2];
      Tile::template v_frags<T>(st, r0 + kk * 16, gid, tig, bv);
#pragma unroll
      for (int dp = 0; dp < HD / 8; ++dp) mma16816<T>(o[dp], pf, bv[dp][0], bv[dp][1]);
    }
  }
  decode_epilogue<T, HD, MT, true, kWarps>(a, smem_raw, o, m, l, span, split, b, g);
}

// One block per (sequence, query, head) row. The 128 threads are kGroups groups of HD/4 lanes (4
// dims each); group g sums splits g, g + kGroups, ..., so the loads of many splits are in flight at
// once (a split count of 100+ is normal for one long sequence).
inline constexpr int kMaxSplits = 1024;  // the combine keeps one weight per split in shared memory

template <class T, int HD>
__global__ static void __launch_bounds__(128) decode_combine_kernel(const DecodeArgs<T> a) {
  constexpr int kLanes = HD / 4, kGroups = 128 / kLanes;
  __shared__ float weight[kMaxSplits];
  __shared__ float warp_max[4];
  __shared__ float4 part[kGroups][kLanes];
  __shared__ float part_den[kGroups];
  const int tid = threadIdx.x, row = blockIdx.x;  // row: (b, j, h) flattened
  const int b = row / (a.queries * a.heads), jh = row % (a.queries * a.heads);
  const int ns = decode_span(a.lengths[b], a.queries, a.window, a.splits, a.min_tiles).splits;
  const int64_t stride = int64_t(a.queries) * a.heads;  // between splits, in rows
  const int64_t first = int64_t(b) * a.splits * stride + jh;

  float mx = -INFINITY;
  for (int s = tid; s < ns; s += 128) mx = fmaxf(mx, a.part_lse[first + s * stride]);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  if ((tid & 31) == 0) warp_max[tid >> 5] = mx;
  __syncthreads();
  mx = fmaxf(fmaxf(warp_max[0], warp_max[1]), fmaxf(warp_max[2], warp_max[3]));
  // Splits where no query row saw a position have lse = -inf: weight 0 (and their output is 0).
  for (int s = tid; s < ns; s += 128) weight[s] = mx == -INFINITY ? 0.f : fast_exp2(a.part_lse[first + s * stride] - mx);
  __syncthreads();

  const int lane = tid % kLanes, grp = tid / kLanes, d = lane * 4;
  float4 acc = make_float4(0.f, 0.f, 0.f, 0.f);
  float den = 0.f;
#pragma unroll 4
  for (int s = grp; s < ns; s += kGroups) {
    const float w = weight[s];
    const float4 v = *reinterpret_cast<const float4*>(a.part_o + (first + s * stride) * HD + d);
    acc.x += w * v.x;
    acc.y += w * v.y;
    acc.z += w * v.z;
    acc.w += w * v.w;
    den += w;
  }
  part[grp][lane] = acc;
  if (lane == 0) part_den[grp] = den;
  __syncthreads();
  if (grp != 0) return;
  for (int g = 1; g < kGroups; ++g) {
    const float4 v = part[g][lane];
    acc.x += v.x;
    acc.y += v.y;
    acc.z += v.z;
    acc.w += v.w;
    den += part_den[g];
  }
  const float inv = den > 0.f ? 1.f / den : 0.f;
  uint2 packed;
  packed.x = pack2<T>(acc.x * inv, acc.y * inv);
  packed.y = pack2<T>(acc.z * inv, acc.w * inv);
  *reinterpret_cast<uint2*>(a.out + int64_t(row) * HD + d) = packed;
}

// Pipeline stages: f16 caches 3 (head_dim 128) or 4; quantized caches, whose stages are a half or a
// quarter of the size, about 64 KiB of stages (4 to 8) to keep as many bytes in flight. ns > 0
// overrides (the benchmarks compare).
template <int HD, class KV>
constexpr int decode_stages(int ns = 0) {
  if (ns > 0) return ns;
  if constexpr (KV::quantized) {
    constexpr int n = int(65536 / kvq::frag_stage_bytes<KV, HD, kDecodeTile>());
    return n < 4 ? 4 : n > 8 ? 8 : n;
  } else {
    return HD == 128 ? 3 : 4;
  }
}

// The 8-warp kernel's stages: f16, two rounds of two tiles (4 x 32 KB at head_dim 128, which
// sm_80's shared memory holds), three at head_dim 64; quantized, the 4-warp kernel's (4 to 8).
template <int HD, class KV>
constexpr int decode_wide_stages() {
  if constexpr (KV::quantized) return decode_stages<HD, KV>();
  else return HD == 128 ? 4 : 6;
}

// The split kernel of scheme KV with NS stages and kWarps warps.
template <class T, int HD, int MT, int NS, class KV, int kWarps = 4>
auto decode_kernel() {
  if constexpr (KV::quantized) return decode_split_quant_kernel<T, HD, MT, NS, KV, kWarps>;
  else return decode_split_kernel<T, HD, MT, NS, kWarps>;
}

// wide: the 8-warp kernel (DecodeOptions::block_warps), where the GPU's shared memory holds its
// stages (sm_86 / sm_89 do not at every size: they run 4 warps). kStages: the 4-warp kernel's
// stages (the 8-warp kernel has its own).
template <class T, int HD, int MT, class KV = kv::Same, int kStages = 0>
void launch_decode(const DecodeArgs<T>& a, int batch, cudaStream_t stream, bool pdl = false, bool wide = false) {
  const int kv_heads = a.heads / a.group;
  const dim3 grid(a.splits, kv_heads, batch);
  using Wide = DecodeConfig<T, HD, MT, decode_wide_stages<HD, KV>(), KV, 8>;
  // (+ 1 KB: the kernel's static shared memory)
  if (wide && Wide::kSmemBytes + 1024 <= size_t(device_attribute<cudaDevAttrMaxSharedMemoryPerBlockOptin>())) {
    auto kernel = decode_kernel<T, HD, MT, decode_wide_stages<HD, KV>(), KV, 8>();
    static std::atomic<uint64_t> raised{0};
    raise_smem_limit(raised, kernel, Wide::kSmemBytes);
    launch_kernel(kernel, grid, dim3(Wide::kThreads), Wide::kSmemBytes, stream, pdl, a);
  } else {
    constexpr int NS = decode_stages<HD, KV>(kStages);
    using Cfg = DecodeConfig<T, HD, MT, NS, KV>;
    auto kernel = decode_kernel<T, HD, MT, NS, KV>();
    if constexpr (Cfg::kSmemBytes > 48 * 1024) {
      static std::atomic<uint64_t> raised{0};
      raise_smem_limit(raised, kernel, Cfg::kSmemBytes);
    }
    launch_kernel(kernel, grid, dim3(Cfg::kThreads), Cfg::kSmemBytes, stream, pdl, a);
  }
  TURBINE_CUDA_CHECK(cudaGetLastError());
  if (a.counters) return;  // merged by the split kernel's last blocks
  decode_combine_kernel<T, HD><<<batch * a.queries * a.heads, 128, 0, stream>>>(a);
  TURBINE_CUDA_CHECK(cudaGetLastError());
}

template <class T, int HD, int MT, class KV = kv::Same, int kStages = 0>
int decode_blocks_per_sm() {
  constexpr int NS = decode_stages<HD, KV>(kStages);
  using Cfg = DecodeConfig<T, HD, MT, NS, KV>;
  auto kernel = decode_kernel<T, HD, MT, NS, KV>();
  // The occupancy query sees the kernel's raised shared-memory limit.
  if constexpr (Cfg::kSmemBytes > 48 * 1024)
    TURBINE_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(Cfg::kSmemBytes)));
  int n = 0;
  TURBINE_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, Cfg::kThreads, Cfg::kSmemBytes));
  return std::max(n, 1);
}

// The run-time sizes as template arguments: head_dim, and the m16 tiles that group*queries needs.
template <class T, class F>
decltype(auto) dispatch_decode(const AttentionShape& s, int queries, F&& f) {
  const int64_t rows = (s.heads / s.kv_heads) * queries;
  check(rows >= 1 && rows <= 64, "attention_decode: (heads / kv_heads) * queries = ", rows,
        " query rows per KV head is not supported (supported: 1 to 64)");
  auto by_rows = [&](auto hd) -> decltype(auto) {
    if (rows <= 16) return f(hd, std::integral_constant<int, 1>{});
    if (rows <= 32) return f(hd, std::integral_constant<int, 2>{});
    return f(hd, std::integral_constant<int, 4>{});
  };
  switch (s.head_dim) {
    case 64: return by_rows(std::integral_constant<int, 64>{});
    case 128: return by_rows(std::integral_constant<int, 128>{});
    default: fail("attention_decode: head_dim ", s.head_dim, " is not supported (supported: 64, 128)");
  }
}

}  // namespace attn

/// Chooses the splits for up to `max_batch` sequences of up to `max_len` positions from the SM
/// count and the blocks resident per SM, so that one 32k sequence fills the GPU (32 splits of
/// 1024 positions for 8 KV heads on an H100); never chunks under 64 positions.
template <class T, KvScheme KV = kv::Same, int kStages = 0>
DecodePlan plan_attention_decode(const AttentionShape& shape, int max_batch, int64_t max_len, int queries = 1) {
  static_assert(attn::kIsHalf16<T>, "attention_decode: T must be __half or __nv_bfloat16");
  check(shape.heads > 0 && shape.kv_heads > 0 && shape.heads % shape.kv_heads == 0, "attention_decode: heads (",
        shape.heads, ") must be a positive multiple of kv_heads (", shape.kv_heads, ")");
  check(queries >= 1 && queries <= 8, "attention_decode: queries per sequence ", queries, " (supported: 1 to 8)");
  check(max_batch >= 1 && max_len >= queries && max_len < (int64_t(1) << 31), "attention_decode: max_batch ",
        max_batch, " and max_len ", max_len, " out of range");
  const int per_sm = attn::dispatch_decode<T>(shape, queries, [](auto hd, auto mt) { return attn::decode_blocks_per_sm<T, hd(), mt(), KV, kStages>(); });
  const int sms = device_sm_count();
  // Cost of s splits for the longest sequence, in tile loads per SM slot: rounds of resident blocks
  // times (tiles per block + about one tile of prologue and merge). Ties go to fewer splits.
  const int64_t slots = int64_t(sms) * per_sm;
  const int64_t pairs = int64_t(max_batch) * shape.kv_heads;
  const int64_t tiles = (max_len + attn::kDecodeTile - 1) / attn::kDecodeTile;
  int64_t best = 1, best_cost = INT64_MAX;
  for (int64_t s = 1; s <= std::min<int64_t>(tiles, attn::kMaxSplits); ++s) {
    const int64_t per = (tiles + s - 1) / s;
    if ((tiles + per - 1) / per != s) continue;  // the device would use fewer splits
    const int64_t cost = ((pairs * s + slots - 1) / slots) * (per + 1);
    if (cost < best_cost) {
      best = s;
      best_cost = cost;
    }
  }
  DecodePlan p;
  p.shape = shape;
  p.queries = queries;
  p.max_batch = max_batch;
  p.max_len = max_len;
  p.splits = int(best);
  return p;
}

/// Workspace for the partial outputs: fp32 [max_batch, splits, queries, heads, head_dim + 1].
inline size_t attention_decode_workspace_bytes(const DecodePlan& p) {
  return size_t(p.max_batch) * p.splits * p.queries * p.shape.heads * (p.shape.head_dim + 1) * sizeof(float);
}

/// Counters for the folded merge: [max_batch, kv_heads] unsigned, zeroed once before the first use.
inline size_t attention_decode_counter_bytes(const DecodePlan& p) {
  return size_t(p.max_batch) * p.shape.kv_heads * sizeof(unsigned);
}

/// How the decode attention is launched.
struct DecodeOptions {
  /// Fold the merge of the splits into the split kernel (one launch instead of two): counters of
  /// attention_decode_counter_bytes(plan), zeroed once; every launch leaves them at zero again.
  /// Launches that share counters must be ordered (one stream).
  unsigned* counters = nullptr;
  /// Programmatic dependent launch (sm_90+): the kernel's blocks start while the previous kernel of
  /// the stream finishes, and wait for it before reading anything.
  bool pdl = false;
  /// With pdl: the lengths, the pointer arrays and the cache positions before each sequence's new
  /// tokens are not written by any kernel that may still run (the decode step: earlier steps wrote
  /// them), so the split kernel starts loading them before it waits; q and the new tokens' rows are
  /// read after the wait.
  bool prefetch_kv = false;
  /// Tiles (64 positions) per split at least: a sequence of up to that many tiles takes one block
  /// per KV head and writes its output directly, with no merge (worth it at batch 1, where the merge
  /// is on the critical path and the GPU is far from full). 1: as many splits as the plan allows.
  int min_split_tiles = 1;
  /// Paged caches: position p of sequence b is row table.row(b, p) of k_seq[b] (a pool that
  /// several sequences may share); no table: row p.
  PagedKvTable table;
  /// Warps a block: 8 takes two tiles at once in two warp groups; 4 one; 0 the launcher's choice:
  /// with f16/bf16 caches 8 where the (sequence, KV head) pairs are at most a quarter of the SMs
  /// (batch-1 decode: a few blocks, each a chain of dependent steps with one warp per scheduler),
  /// with quantized caches 4 (their 8-warp form, where the first 4 warps load each tile, measured
  /// slower at batch 1 x 8192 on an H100, 2026-12-06 night: int8 25.0 against 19.8 us, int4 23.3
  /// against 17.9).
  int block_warps = 0;
};

/// Attention of `queries` new tokens per sequence against each sequence's cache.
///   q:        [batch, queries, heads, head_dim]
///   k_seq[b], v_seq[b] (device arrays of device pointers): sequence b's cache,
///             [rows, kv_stride], kv head h at + h*head_dim (kv_stride 0: kv_heads*head_dim);
///             with a quantized KV: pools of kv_quant.cuh rows, kv_stride in bytes (0: kv_row_bytes);
///             position p is row p, or row options.table.row(b, p) of a paged pool
///   lengths:  [batch] int32 on the device, positions in each cache including the new tokens;
///             query j of sequence b sits at position lengths[b] - queries + j
///   out:      [batch, queries, heads, head_dim]
/// Nothing on the host depends on the lengths, so the launch can be captured in a CUDA graph.
/// kStages: the 4-warp kernel's pipeline stages (0: the default of attn::decode_stages; other values for benchmarks).
template <class T, KvScheme KV = kv::Same, int kStages = 0>
void attention_decode(const DecodePlan& plan, const T* q, const T* const* k_seq, const T* const* v_seq,
                      int64_t kv_stride, const int* lengths, int batch, T* out, void* workspace,
                      cudaStream_t stream = 0, const DecodeOptions& options = {}) {
  const AttentionShape& s = plan.shape;
  check(batch >= 0 && batch <= plan.max_batch, "attention_decode: batch ", batch, " exceeds the plan's ",
        plan.max_batch);
  check(plan.splits >= 1 && plan.splits <= attn::kMaxSplits, "attention_decode: the plan's splits (", plan.splits,
        ") must be 1 to ", attn::kMaxSplits);
  if constexpr (KV::quantized) {
    const int64_t row = kv_row_bytes<T, KV>(s.kv_heads, s.head_dim);
    if (kv_stride == 0) kv_stride = row;
    check(kv_stride >= row && kv_stride % 16 == 0, "attention_decode: kv_stride ", kv_stride, " bytes must be >= ", row,
          " (a quantized row) and a multiple of 16");
  } else {
    if (kv_stride == 0) kv_stride = s.kv_heads * s.head_dim;
    check(kv_stride >= s.kv_heads * s.head_dim && kv_stride % 8 == 0, "attention_decode: kv_stride ", kv_stride,
          " must be >= kv_heads * head_dim and a multiple of 8 elements");
  }
  if (batch == 0) return;
  attn::DecodeArgs<T> a{};
  a.q = q;
  a.k = k_seq;
  a.v = v_seq;
  a.lengths = lengths;
  a.part_o = static_cast<float*>(workspace);
  a.part_lse = a.part_o + size_t(plan.max_batch) * plan.splits * plan.queries * s.heads * s.head_dim;
  a.out = out;
  a.counters = options.counters;
  a.prefetch_kv = options.pdl && options.prefetch_kv ? 1 : 0;
  a.min_tiles = std::max(1, options.min_split_tiles);
  a.kv_stride = kv_stride;
  a.table = options.table;
  a.heads = int(s.heads);
  a.group = int(s.heads / s.kv_heads);
  a.queries = plan.queries;
  a.window = int(s.sliding_window);
  a.splits = plan.splits;
  a.scale_log2 = attn::kLog2e / std::sqrt(float(s.head_dim));
  const bool pdl = options.pdl && pdl_available();
  check(options.block_warps == 0 || options.block_warps == 4 || options.block_warps == 8, "attention_decode: ",
        options.block_warps, " warps a block is not supported (supported: 0 for the launcher's choice, 4, 8)");
  // The launcher's choice (quantized caches: 4 unless forced; see DecodeOptions::block_warps).
  const bool wide = options.block_warps == 8 ||
                    (options.block_warps == 0 && !KV::quantized && int64_t(batch) * s.kv_heads * 4 <= device_sm_count());
  attn::dispatch_decode<T>(s, plan.queries, [&](auto hd, auto mt) { attn::launch_decode<T, hd(), mt(), KV, kStages>(a, batch, stream, pdl, wide); });
}

/// A plan with its own workspace (and zeroed counters for the folded merge); KV: the caches' scheme;
/// kStages: see attention_decode.
template <class T, KvScheme KV = kv::Same, int kStages = 0>
class DecodeAttention {
 public:
  /// Plans for up to max_batch sequences of up to max_len cache positions with `queries` new
  /// tokens each, and allocates the workspace and the zeroed merge counters on the device.
  DecodeAttention(const AttentionShape& shape, int max_batch, int64_t max_len, int queries = 1)
      : plan_(plan_attention_decode<T, KV, kStages>(shape, max_batch, max_len, queries)),
        workspace_(attention_decode_workspace_bytes(plan_), "attention decode workspace"),
        counters_(attention_decode_counter_bytes(plan_) / sizeof(unsigned), "attention decode counters") {
    TURBINE_CUDA_CHECK(cudaMemset(counters_.data(), 0, counters_.bytes()));
  }
  /// The plan the launches use.
  const DecodePlan& plan() const { return plan_; }
  /// Warps a block for every launch (DecodeOptions::block_warps: 0 the launcher's choice, 4, 8).
  int block_warps = 0;
  /// fused: one launch (the merge folded in, programmatic dependent launch, the cache before the new
  /// tokens read before the wait, at least min_split_tiles tiles per split: see DecodeOptions); else
  /// split + merge kernels.
  /// pdl = false when the previous operation of the stream is not a kernel (a copy). `table`: the
  /// block tables of paged caches (see DecodeOptions::table).
  void operator()(const T* q, const T* const* k_seq, const T* const* v_seq, int64_t kv_stride, const int* lengths,
                  int batch, T* out, cudaStream_t stream = 0, bool fused = false, int min_split_tiles = 1,
                  bool pdl = true, PagedKvTable table = {}) {
    DecodeOptions o;
    o.table = table;
    o.block_warps = block_warps;
    if (fused) {
      o.counters = counters_.data();
      o.pdl = pdl;
      o.prefetch_kv = pdl;
      o.min_split_tiles = min_split_tiles;
    }
    attention_decode<T, KV, kStages>(plan_, q, k_seq, v_seq, kv_stride, lengths, batch, out, workspace_.data(), stream, o);
  }

 private:
  DecodePlan plan_;
  DeviceBuffer<unsigned char> workspace_;
  DeviceBuffer<unsigned> counters_;
};

}  // namespace turbine::cuda
