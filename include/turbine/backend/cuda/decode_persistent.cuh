#pragma once
// The batch-1 decode step of a 4-bit (W4A16) Llama-family model as one persistent kernel: every
// layer's QKV, attention, O, gate/up and down run in one launch of one block per SM, separated by
// grid-wide barriers instead of kernel boundaries.
//
// Why: the one-kernel-per-op chain (cuda_transformer.cuh's fused decode) lost 23-27% of the W4 GEMV's
// speed against a kernel that only reads the same weights (H100, PERFORMANCE.md 2026-12-06): after
// each kernel boundary the next GEMV's blocks cannot start streaming until the last blocks of the one
// before have left the SMs, and its x arrives only after the programmatic-launch wait. Here the weight
// stream never stops: each warp keeps kPersistentDepth weight chunks in flight through a register ring (the
// W4 GEMV's kStream loads and mma arithmetic, gemv_w4.cuh / w4_chunk.cuh), and its loader walks the
// whole step's sequence of (layer, projection, tile, chunk), so the first chunks of the next projection
// are already on their way while the block finishes this one, waits at the barrier and stages x.
// The weights do not depend on the activations, so nothing orders their loads after the barrier.
//
// Per layer (tile sums as DecodeFusion::norm_stats; the policies are the fused chain's, gemv_fused.cuh):
//   QKV      x = RMSNorm from the down epilogue's tile sums (layer 0: the embedding row), rotary +
//            KV-cache store in the epilogue (GemvRopeKv)             | barrier
//   attn     blocks (KV head, split) over the cache positions: partial output and log-sum-exp
//            per split                                               | barrier
//   O        x = the splits merged in the prologue; residual += in the epilogue, with tile sums
//                                                                    | barrier
//   gate/up  x = RMSNorm from the O epilogue's tile sums, silu(gate) * up epilogue | barrier
//   down     x = act; residual += with tile sums                     | barrier
// The final norm and the LM head stay the chain's kernels (after this one).
//
// Activations written in the kernel are read with plain (coherent) loads after a barrier; only the
// weights take the read-only path. The barrier is one word in global memory whose top bit flips
// when every block has arrived (persistent_grid_barrier), so graph replays find it ready. All
// blocks must be resident at once: the launcher sizes the grid from the occupancy query, one an SM.
#include <cfloat>
#include <cstdint>

#include "check.cuh"
#include "device_buffer.cuh"
#include "gemv_fused.cuh"
#include "gemv_w4.cuh"
#include "paged_kv.cuh"
#include "w4_chunk.cuh"
#include "w4_layout.cuh"

namespace turbine::cuda {

/// One layer of a 4-bit model as the persistent decode kernel reads it (an array in device memory).
struct PersistentLayer {
  W4Matrix qkv;                         ///< [(heads + 2 kv_heads) head_dim, hidden]
  W4Matrix o;                           ///< [hidden, heads head_dim]
  W4Matrix gate_up;                     ///< [2 inter, hidden]: gate rows, then up rows
  W4Matrix down;                        ///< [hidden, inter]
  const __half* attn_norm = nullptr;    ///< [hidden] RMSNorm weight before attention
  const __half* mlp_norm = nullptr;     ///< [hidden] RMSNorm weight before the MLP
  const __half* bqkv = nullptr;         ///< QKV bias or null
  __half* const* k_caches = nullptr;    ///< [1] device: the sequence's key pool of this layer
  __half* const* v_caches = nullptr;    ///< [1] device: its value pool
};

/// The arguments of one persistent decode step (fixed at graph capture: everything that changes
/// between steps is read through these pointers).
struct PersistentStep {
  const PersistentLayer* layers = nullptr;  ///< [num_layers] device
  int num_layers = 0;                       ///< layers of the model
  /// hidden size, MLP size, query heads, KV heads, elements per head, sliding window (0: none),
  /// rows of the embedding
  ///@{
  int hidden = 0, inter = 0, heads = 0, kv_heads = 0, head_dim = 0, window = 0, vocab = 0;
  ///@}
  float eps = 1e-5f;                  ///< RMSNorm epsilon
  const __half* embed = nullptr;      ///< [vocab, hidden]
  const int* ids = nullptr;           ///< [1] device: the token
  const int* positions = nullptr;     ///< [1] device: its position
  const int* lengths = nullptr;       ///< [1] device: cache positions with it
  const float* inv_freq = nullptr;    ///< [head_dim / 2] rotary frequencies
  PagedKvTable table;                 ///< the sequence's block table (none: rows are positions)
  float* residual = nullptr;          ///< [hidden] fp32, the final residual on return
  float* stats = nullptr;             ///< [2, stats_stride] tile sums: after down (attn), after O (mlp)
  int stats_stride = 0;               ///< floats per row of stats
  __half* q = nullptr;                ///< [heads * hd] rotated queries
  __half* act = nullptr;              ///< [inter] silu(gate) * up
  float* part_o = nullptr;            ///< [max_splits, heads * hd] each split's normalized output
  float* part_lse = nullptr;          ///< [max_splits, heads] its log-sum-exp
  unsigned* barrier = nullptr;        ///< [1] the grid barrier's word (zero at first use)
  int max_splits = 1;                 ///< attention splits per KV head at most
  int min_split_positions = 128;      ///< positions a split takes at least
  /// Benchmark aid, or null: [1 + 5 num_layers] device clock (ns) at the start and after each
  /// barrier (QKV, attention, O, gate/up, down of each layer; the last layer's down gets a barrier
  /// of its own), as block 0 sees them.
  unsigned long long* phase_ns = nullptr;
  /// Chunks a warp asks L2 for (beyond its ring) when the attention starts, where the weight
  /// stream would otherwise wait: 0 for none.
  int prefetch_chunks = 0;
};

/// Query heads per KV head the persistent kernel takes at most.
inline constexpr int kPersistentMaxGroup = 8;
/// Attention splits per KV head the persistent kernel takes at most.
inline constexpr int kPersistentMaxSplits = 4;

namespace detail {

// One block an SM of kPersistentWarps warps, each with kPersistentDepth weight chunks in flight.
// 16 warps x 4 (the W4 GEMV's kStream shape) capped the kernel at 128 registers a thread and
// spilled (H100, 2026-12-07: 4.14 ms a Llama-3-8B step against the chain's 2.82); 12 x 5 uses 167
// and does not, and still took 3.75 ms (PERFORMANCE.md, 2026-12-07 afternoon: every phase that
// starts at a barrier is slow, see there).
// A shared-memory ring instead (cp.async, 8 chunks deep a warp: 96 KB an SM in flight) was slower
// in every weight phase (H100 2026-12-07 evening: 4.11 ms a step against 3.52; gate/up 49% of the
// ceiling against 59%) and was taken out.
inline constexpr int kPersistentWarps = 12;
inline constexpr int kPersistentDepth = 5;
inline constexpr int kPersistentThreads = kPersistentWarps * 32;
inline constexpr int kPersistentRoundTiles = 8;  // 16-row tiles whose partial sums shared memory holds at once
inline constexpr int kPersistentPositions = kPersistentThreads / 4;  // cache positions per attention tile (4 threads each)

// Shared memory: x (the largest input, padded as GemvXNorm stages it), then a region that holds either
// the GEMV's per-warp partial sums or the attention's scratch.
constexpr size_t persistent_x_bytes(int max_k) { return (size_t(max_k + 8) * 2 + 15) / 16 * 16; }
constexpr size_t persistent_partial_bytes() { return size_t(kPersistentRoundTiles) * kPersistentWarps * 4 * 32 * 4; }
constexpr size_t persistent_attention_bytes(int group, int hd) {
  // queries, scores, running max / sum / rescale, the per-warp outputs; the positions' cache rows
  return 4 * (size_t(group) * hd + size_t(group) * kPersistentPositions + ((3 * group + 3) & ~3) +
              size_t(kPersistentWarps) * group * hd) +
         8 * size_t(kPersistentPositions);
}

// All blocks wait until all have arrived; writes before it are visible to plain loads after it.
// `between()` runs between this block's arrival and its wait (the weight loads held back for it).
// One word (barrier[0]) whose top bit flips when every block has arrived: thread 0 adds to it once
// (red.release.gpu: block 0 adds 2^31 - (grid - 1), the rest 1, so the word gains exactly 2^31 and
// its low bits return to zero) and spins with acquire loads until the top bit differs from
// `phase`, the bit this block last saw (read at the kernel's start; no reset, so graph replays and
// the next launch find the word as the last one left it). One atomic on the critical path: 1.2-1.9
// us a barrier on an H100, where a count + generation barrier (the last arrival resetting the
// count: four dependent round trips to L2) took 2.3-3.0 (tools/probe_grid_barrier.cu, 2026-12-07).
// The arrival's release waits for what thread 0's warp has outstanding, weight loads included,
// which is why each warp arrives with its ring drained and issues the next loads only after it
// (letting them run into the barrier instead measured 3-4% slower a step).
template <class Between>
__device__ __forceinline__ void persistent_grid_barrier(unsigned* word, unsigned& phase, Between&& between) {
  __syncthreads();
  if (threadIdx.x == 0) {
    const unsigned add = blockIdx.x == 0 ? 0x80000000u - (gridDim.x - 1) : 1u;
    asm volatile("red.release.gpu.global.add.u32 [%0], %1;" ::"l"(word), "r"(add) : "memory");
  }
  between();
  if (threadIdx.x == 0) {
    unsigned now;
    do {
      asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(now) : "l"(word) : "memory");
    } while ((now >> 31) == phase);
    phase ^= 1u;
  }
  __syncthreads();
}

// Block 0's record of the device clock at step point `i` (PersistentStep::phase_ns), if asked for.
__device__ __forceinline__ void persistent_stamp(const PersistentStep& a, int i) {
  if (a.phase_ns && blockIdx.x == 0 && threadIdx.x == 0) {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    a.phase_ns[i] = t;
  }
}

// The positions this step's query sees, [lo, len), and how they are split: splits of at least
// min_split_positions, at most max_splits of them (the attention and the merge compute the same).
__device__ __forceinline__ void persistent_splits(const PersistentStep& a, int& len, int& lo, int& splits, int& per) {
  len = *a.lengths;
  lo = a.window > 0 ? max(0, len - a.window) : 0;
  const int span = len - lo;
  per = max(a.min_split_positions, (span + a.max_splits - 1) / a.max_splits);
  splits = max(1, (span + per - 1) / per);
}

// One (KV head, split) of the attention: the group's queries against positions [p0, p1) in tiles of
// kPersistentPositions (one position per 4 threads). Latency-bound (8 KV heads x a few splits on a
// GPU of 132 SMs), so a tile is two dependent round trips to memory: the positions' cache rows
// (block table), then every key and value load of the tile at once, keys 4 threads a row (each a
// quarter of its 16-byte pieces, reduced by shuffles), values one position a warp at a time (4
// columns a lane, all of the warp's positions in flight); the next tile's rows are looked up during
// this one's P V. Online softmax one warp a head. The warps' outputs are summed at the end; the
// split's normalized output and log-sum-exp go to part_o / part_lse.
template <int kMaxG>
__device__ __forceinline__ void persistent_attention_item(const PersistentStep& a, const PersistentLayer& L, int h,
                                                          int split, int p0, int p1, float* smem) {
  constexpr int kT = kPersistentThreads, kW = kPersistentWarps, kP = kPersistentPositions;
  constexpr int kVPerWarp = (kP + kW - 1) / kW;
  static_assert(kP * 4 == kT, "one position per 4 threads");
  const int G = a.heads / a.kv_heads, hd = a.head_dim, tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  float* qf = smem;                 // [G][hd] scaled queries
  float* sc = qf + G * hd;          // [G][kP] scores, then weights
  float* mrun = sc + G * kP;        // [G] running max
  float* lrun = mrun + G;           // [G] running sum
  float* corr = lrun + G;           // [G] this tile's rescale of the running output
  // [kW][G][hd], 16-byte aligned for its float4 stores (3 G rounded up to 4 floats: with G = 2 the
  // unrounded offset was misaligned, H100 2026-12-07), then the positions' rows [kP] (8-byte aligned)
  float* red = mrun + ((3 * G + 3) & ~3);
  int64_t* rows = reinterpret_cast<int64_t*>(red + kW * G * hd);
  const float scale = rsqrtf(static_cast<float>(hd));
  const int64_t stride = int64_t(a.kv_heads) * hd;
  for (int i = tid; i < G * hd; i += kT) qf[i] = __half2float(a.q[h * G * hd + i]) * scale;
  if (tid < min(kP, p1 - p0)) rows[tid] = a.table.row(0, p0 + tid) * stride;
  if (tid < G) {
    mrun[tid] = -INFINITY;
    lrun[tid] = 0.f;
  }
  __syncthreads();
  const __half* kpool = L.k_caches[0] + int64_t(h) * hd;
  const __half* vpool = L.v_caches[0] + int64_t(h) * hd;
  const bool lane_on = 4 * lane < hd;  // P V: lane takes columns 4 lane .. 4 lane + 3 (head_dim <= 128)
  const int pos = tid >> 2, quarter = tid & 3, pieces = hd >> 3;  // keys: 16-byte pieces quarter, +4, +8, +12
  float acc[kMaxG][4];
#pragma unroll
  for (int g = 0; g < kMaxG; ++g) acc[g][0] = acc[g][1] = acc[g][2] = acc[g][3] = 0.f;
  for (int t0 = p0; t0 < p1; t0 += kP) {
    const int tn = min(kP, p1 - t0);
    uint2 v2[kVPerWarp];  // this warp's positions warp + kW u
#pragma unroll
    for (int u = 0; u < kVPerWarp; ++u) {
      const int i = warp + kW * u;
      v2[u] = lane_on && i < tn ? *reinterpret_cast<const uint2*>(vpool + rows[i] + 4 * lane) : uint2{};
    }
    uint4 k4[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int piece = quarter + 4 * j;
      k4[j] = pos < tn && piece < pieces ? *reinterpret_cast<const uint4*>(kpool + rows[pos] + 8 * piece) : uint4{};
    }
    float s[kMaxG];
#pragma unroll
    for (int g = 0; g < kMaxG; ++g) s[g] = 0.f;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int piece = quarter + 4 * j;
      if (piece >= pieces) break;
      float kv[8];
      vec::unpack8<__half>(k4[j], kv);
#pragma unroll
      for (int g = 0; g < kMaxG; ++g)
        if (g < G) {
          const float* qg = qf + g * hd + 8 * piece;
#pragma unroll
          for (int e = 0; e < 8; ++e) s[g] = fmaf(qg[e], kv[e], s[g]);
        }
    }
#pragma unroll
    for (int g = 0; g < kMaxG; ++g) {
      s[g] += __shfl_xor_sync(0xffffffffu, s[g], 1);
      s[g] += __shfl_xor_sync(0xffffffffu, s[g], 2);
      if (g < G && quarter == 0 && pos < tn) sc[g * kP + pos] = s[g];
    }
    __syncthreads();
    for (int g = warp; g < G; g += kW) {  // online softmax, one warp a head
      float* sg = sc + g * kP;
      float mx = -INFINITY;
      for (int i = lane; i < tn; i += 32) mx = fmaxf(mx, sg[i]);
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
      const float m_old = mrun[g], m_new = fmaxf(m_old, mx);
      float sum = 0.f;
      for (int i = lane; i < tn; i += 32) {
        const float p = __expf(sg[i] - m_new);
        sg[i] = p;
        sum += p;
      }
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
      __syncwarp();
      if (lane == 0) {
        const float c = __expf(m_old - m_new);  // 0 at the first tile (m_old = -inf)
        corr[g] = c;
        lrun[g] = lrun[g] * c + sum;
        mrun[g] = m_new;
      }
    }
    // The next tile's rows (every read of this tile's rows was an address, taken before the barrier above).
    if (t0 + kP < p1 && tid < min(kP, p1 - t0 - kP)) rows[tid] = a.table.row(0, t0 + kP + tid) * stride;
    __syncthreads();
#pragma unroll
    for (int g = 0; g < kMaxG; ++g)
      if (g < G) {
        const float c = corr[g];
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[g][e] *= c;
      }
#pragma unroll
    for (int u = 0; u < kVPerWarp; ++u) {
      const int i = warp + kW * u;
      if (i >= tn) break;
      const float2 lo = __half22float2(*reinterpret_cast<const __half2*>(&v2[u].x));
      const float2 hi = __half22float2(*reinterpret_cast<const __half2*>(&v2[u].y));
#pragma unroll
      for (int g = 0; g < kMaxG; ++g)
        if (g < G) {
          const float p = sc[g * kP + i];
          acc[g][0] = fmaf(p, lo.x, acc[g][0]);
          acc[g][1] = fmaf(p, lo.y, acc[g][1]);
          acc[g][2] = fmaf(p, hi.x, acc[g][2]);
          acc[g][3] = fmaf(p, hi.y, acc[g][3]);
        }
    }
    __syncthreads();  // before the next tile's scores overwrite sc
  }
  if (lane_on) {
#pragma unroll
    for (int g = 0; g < kMaxG; ++g)
      if (g < G)
        *reinterpret_cast<float4*>(red + (warp * G + g) * hd + 4 * lane) = make_float4(acc[g][0], acc[g][1], acc[g][2], acc[g][3]);
  }
  __syncthreads();
  for (int i = tid; i < G * hd; i += kT) {
    const int g = i / hd;
    float s = 0.f;
#pragma unroll 4
    for (int w = 0; w < kW; ++w) s += red[w * G * hd + i];
    const int head = h * G + g;
    a.part_o[int64_t(split) * a.heads * hd + int64_t(head) * hd + (i - g * hd)] = s / lrun[g];
    if (i - g * hd == 0) a.part_lse[split * a.heads + head] = mrun[g] + __logf(lrun[g]);
  }
  __syncthreads();
}

// The O projection's x: the attention splits merged (their outputs weighted by exp(lse - max)),
// the weights of every (split, head) computed once into shared memory. `wsm`: heads x max_splits
// floats. Each thread's first outputs' loads go out before the weights' round trip, and every
// batch of loads is issued before its first use (a loop of dependent loads cost a round trip each).
__device__ __forceinline__ void persistent_merge_attention(const PersistentStep& a, __half* xs, float* wsm) {
  constexpr int kU = 2, kS = kPersistentMaxSplits;  // float4 outputs a thread has in flight; splits
  int len, lo, splits, per;
  persistent_splits(a, len, lo, splits, per);
  const int hd = a.head_dim, n4 = a.heads * hd / 4;  // head_dim % 16 == 0: a float4 is in one head
  const float4* po = reinterpret_cast<const float4*>(a.part_o);
  float4 v[kU][kS];
  auto fetch = [&](int base) {
#pragma unroll
    for (int u = 0; u < kU; ++u)
#pragma unroll
      for (int sp = 0; sp < kS; ++sp) {
        const int i4 = base + u * kPersistentThreads;
        v[u][sp] = i4 < n4 && sp < splits ? po[int64_t(sp) * n4 + i4] : make_float4(0.f, 0.f, 0.f, 0.f);
      }
  };
  fetch(threadIdx.x);
  if (splits > 1) {
    for (int head = threadIdx.x; head < a.heads; head += kPersistentThreads) {
      float lse[kS], m = -INFINITY;
#pragma unroll
      for (int sp = 0; sp < kS; ++sp) {
        lse[sp] = sp < splits ? a.part_lse[sp * a.heads + head] : -INFINITY;
        m = fmaxf(m, lse[sp]);
      }
      float den = 0.f;
#pragma unroll
      for (int sp = 0; sp < kS; ++sp) den += lse[sp] = sp < splits ? __expf(lse[sp] - m) : 0.f;
#pragma unroll
      for (int sp = 0; sp < kS; ++sp)
        if (sp < splits) wsm[sp * a.heads + head] = lse[sp] / den;
    }
    __syncthreads();
  }
  for (int base = threadIdx.x; base < n4; base += kU * kPersistentThreads) {
    if (base != static_cast<int>(threadIdx.x)) fetch(base);
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      const int i4 = base + u * kPersistentThreads;
      if (i4 >= n4) break;
      const int head = 4 * i4 / hd;
      float4 r = v[u][0];
      if (splits > 1) {
        r = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
        for (int sp = 0; sp < kS; ++sp)
          if (sp < splits) {
            const float w = wsm[sp * a.heads + head];
            r.x = fmaf(w, v[u][sp].x, r.x);
            r.y = fmaf(w, v[u][sp].y, r.y);
            r.z = fmaf(w, v[u][sp].z, r.z);
            r.w = fmaf(w, v[u][sp].w, r.w);
          }
      }
      __half2* out = reinterpret_cast<__half2*>(xs + 4 * i4);
      out[0] = __floats2half2_rn(r.x, r.y);
      out[1] = __floats2half2_rn(r.z, r.w);
    }
  }
  __syncthreads();
}

// x as stored ([k] fp16, written in this kernel) into shared memory, kU loads a thread in flight.
__device__ __forceinline__ void persistent_stage_x(const __half* x, int k, __half* xs) {
  constexpr int kU = 6;
  const uint4* src = reinterpret_cast<const uint4*>(x);
  for (int base = threadIdx.x; base < k / 8; base += kU * kPersistentThreads) {
    uint4 v[kU];
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      const int i = base + u * kPersistentThreads;
      v[u] = i < k / 8 ? src[i] : uint4{};
    }
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      const int i = base + u * kPersistentThreads;
      if (i < k / 8) reinterpret_cast<uint4*>(xs)[i] = v[u];
    }
  }
  __syncthreads();
}

struct PersistentSmemLane {
  const __half* p;
  __device__ __forceinline__ uint4 operator()(int kk) const { return *reinterpret_cast<const uint4*>(p + kk); }
};

// The projections of a layer in step order.
enum PersistentProj : int { kProjQkv = 0, kProjO = 1, kProjGateUp = 2, kProjDown = 3 };

__device__ __forceinline__ const W4Matrix& persistent_matrix(const PersistentLayer& L, int proj) {
  return proj == kProjQkv ? L.qkv : proj == kProjO ? L.o : proj == kProjGateUp ? L.gate_up : L.down;
}

// The output policies of each projection (gemv_fused.cuh), as the loader (rows) and the epilogue use them.
__device__ __forceinline__ GemvRopeKv<__half> persistent_rope_policy(const PersistentStep& a, const PersistentLayer& L) {
  RopeKvOutput<__half> o;
  o.q = a.q;
  o.k_caches = L.k_caches;
  o.v_caches = L.v_caches;
  o.positions = a.positions;
  o.inv_freq = a.inv_freq;
  o.bias = L.bqkv;
  o.table = a.table;
  o.heads = a.heads;
  o.kv_heads = a.kv_heads;
  o.head_dim = a.head_dim;
  return {o};
}

__device__ __forceinline__ void persistent_rows(const PersistentStep& a, int proj, int tile, int g, int n, int& ra,
                                                int& rb) {
  if (proj == kProjQkv) {
    RopeKvOutput<__half> o;
    o.heads = a.heads;
    o.kv_heads = a.kv_heads;
    o.head_dim = a.head_dim;
    GemvRopeKv<__half>{o}.rows(tile, g, n, ra, rb);
  } else if (proj == kProjGateUp) {
    GemvGateUpSilu<__half>{nullptr}.rows(tile, g, n, ra, rb);
  } else {
    GemvResidualStats<__half>{}.rows(tile, g, n, ra, rb);
  }
}

// The 16-row tiles of an n-row projection block b takes: [first, first + count).
__device__ __forceinline__ void persistent_tiles(int n, int& first, int& count) {
  const int tiles = (n + kGemvRows - 1) / kGemvRows, b = blockIdx.x, nb = gridDim.x;
  first = static_cast<int>(int64_t(b) * tiles / nb);
  count = static_cast<int>(int64_t(b + 1) * tiles / nb) - first;
}

__device__ __forceinline__ int persistent_group_shift(int group) { return group == 32 ? 5 : group == 64 ? 6 : 7; }

// A warp's place in the step's weight stream: layer, projection, tile of the block's range and
// 128-input chunk, with the rows' addresses for lane (g, c). Walks in the order the kernel computes.
struct PersistentCursor {
  int layer = 0, proj = 0, tile = 0, chunk = 0, first = 0, count = 0, chunks = 0, k = 0, gs = 7;
  bool done = false;
  const uint32_t *wa = nullptr, *wb = nullptr;
  const __half2 *pa = nullptr, *pb = nullptr;

  __device__ __forceinline__ void point(const PersistentStep& a, int g, int c) {
    const W4Matrix& m = persistent_matrix(a.layers[layer], proj);
    int ra, rb;
    persistent_rows(a, proj, first + tile, g, m.n, ra, rb);
    wa = m.qweight + int64_t(ra) * (m.k >> 3) + 4 * c;
    wb = m.qweight + int64_t(rb) * (m.k >> 3) + 4 * c;
    pa = m.params + int64_t(ra) * (m.k >> gs);
    pb = m.params + int64_t(rb) * (m.k >> gs);
  }
  // Enters projection (layer, proj), or the next one where this warp has chunks.
  __device__ __forceinline__ void enter(const PersistentStep& a, int warp, int g, int c) {
    while (true) {
      const W4Matrix& m = persistent_matrix(a.layers[layer], proj);
      persistent_tiles(m.n, first, count);
      k = m.k;
      gs = persistent_group_shift(m.group);
      chunks = (m.k + 127) >> 7;
      if (warp < count * chunks) {  // items dealt in turn: item j (tile j / chunks) to warp j % W
        tile = warp / chunks;
        chunk = warp % chunks;
        point(a, g, c);
        return;
      }
      if (!next_projection(a)) return;
    }
  }
  __device__ __forceinline__ bool next_projection(const PersistentStep& a) {
    if (++proj == 4) {
      proj = 0;
      if (++layer == a.num_layers) {
        done = true;
        return false;
      }
    }
    return true;
  }
  // The next chunk of this warp.
  __device__ __forceinline__ void advance(const PersistentStep& a, int warp, int g, int c) {
    if (done) return;
    const int was = tile;
    for (chunk += kPersistentWarps; chunk >= chunks; chunk -= chunks) ++tile;
    if (tile == was) return;
    if (tile < count) return point(a, g, c);
    if (next_projection(a)) enter(a, warp, g, c);
  }
};

// Each warp's last kPersistentDepth loads of a projection wait until the block has arrived at the
// barrier after it (see persistent_grid_barrier).
template <bool kScaleAfter>
__global__ static void __launch_bounds__(kPersistentThreads, 1)
    persistent_decode_kernel(const PersistentStep a, int x_bytes) {
  extern __shared__ uint4 persistent_smem[];
  __half* const xs = reinterpret_cast<__half*>(persistent_smem);
  float* const region = reinterpret_cast<float*>(reinterpret_cast<char*>(persistent_smem) + x_bytes);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, c = lane & 3;
  const uint4 zero = make_uint4(0, 0, 0, 0);

  // The loader: this warp's next chunk in step order (PersistentCursor); the ring of loads in flight.
  PersistentCursor cur;
  cur.enter(a, warp, g, c);
  uint4 va[kPersistentDepth], vb[kPersistentDepth];
  __half2 sa[kPersistentDepth], sb[kPersistentDepth];
  auto load = [&](int s) {
    const int kk = cur.chunk * 128 + 32 * c;
    if (!cur.done && kk < cur.k) {
      va[s] = vec::load_stream(cur.wa + cur.chunk * 16);
      vb[s] = vec::load_stream(cur.wb + cur.chunk * 16);
      sa[s] = __ldg(cur.pa + (kk >> cur.gs));
      sb[s] = __ldg(cur.pb + (kk >> cur.gs));
    } else {
      va[s] = vb[s] = zero;
      sa[s] = sb[s] = __half2{};
    }
    cur.advance(a, warp, g, c);
  };
  // Asks L2 for this warp's `n` chunks after those in the ring (a copy of the cursor walks them).
  auto prefetch_l2 = [&](int n) {
    PersistentCursor ahead = cur;
    for (int i = 0; i < n && !ahead.done; ++i) {
      if (ahead.chunk * 128 + 32 * c < ahead.k) {
        asm volatile("prefetch.global.L2 [%0];" ::"l"(ahead.wa + ahead.chunk * 16));
        asm volatile("prefetch.global.L2 [%0];" ::"l"(ahead.wb + ahead.chunk * 16));
      }
      ahead.advance(a, warp, g, c);
    }
  };
  persistent_stamp(a, 0);
  // The flip barrier's top bit as this block finds it (see persistent_grid_barrier): no block can
  // flip it before this one has arrived at the first barrier.
  unsigned phase = 0;
  if (threadIdx.x == 0) asm volatile("ld.relaxed.gpu.global.u32 %0, [%1];" : "=r"(phase) : "l"(a.barrier) : "memory");
  phase >>= 31;
#pragma unroll
  for (int s = 0; s < kPersistentDepth; ++s) load(s);

  int gi = 0;  // this warp's chunks computed so far in the step (the ring slot is gi % kPersistentDepth)
  int loaded = kPersistentDepth;  // this warp's chunks loaded so far (item i's slot is i % kPersistentDepth)
  // One projection: this block's tiles in rounds of kPersistentRoundTiles, x staged in xs.
  // The block's (tile, chunk) items of a projection are dealt to the warps in turn (item j, in tile
  // j / chunks, to warp j % kPersistentWarps): every warp gets the same share whatever k is (with
  // 12 warps, dealing each tile's 32 chunks of k = 4096 on its own left 4 warps with 2 and 8 with 3).
  auto project = [&](int li, int proj, auto epilogue) {
    constexpr int W = kPersistentWarps;
    const W4Matrix& m = persistent_matrix(a.layers[li], proj);
    int first, count;
    persistent_tiles(m.n, first, count);
    const int chunks = (m.k + 127) >> 7;
    auto dealt_before = [&](int tiles) {  // this warp's items in the first `tiles` tiles
      const int j = tiles * chunks;
      return j > warp ? (j - 1 - warp) / W + 1 : 0;
    };
    const PersistentSmemLane xl{xs};
    const bool has_x = g == 0;
    const int proj_end = gi + dealt_before(count);  // loads of items from here wait for the barrier
    int ct = warp / chunks, cc = warp % chunks;  // the computing cursor
    for (int r0 = 0; r0 < count; r0 += kPersistentRoundTiles) {
      const int rtiles = min(kPersistentRoundTiles, count - r0);
      // This warp's sums of each tile of the round, zero where it has no item (only it writes them).
      for (int t = 0; t < rtiles; ++t)
#pragma unroll
        for (int j = 0; j < 4; ++j) region[((t * W + warp) * 4 + j) * 32 + lane] = 0.f;
      const int start = gi, end = gi + dealt_before(r0 + rtiles) - dealt_before(r0);
      float acc[1][4] = {{0.f, 0.f, 0.f, 0.f}}, acc1[1][4] = {{0.f, 0.f, 0.f, 0.f}};
      for (int base = start - start % kPersistentDepth; base < end; base += kPersistentDepth) {
#pragma unroll
        for (int s = 0; s < kPersistentDepth; ++s) {
          const int i = base + s;
          if (i < start || i >= end) continue;
          const uint4 a4 = va[s], b4 = vb[s];
          const __half2 pa = sa[s], pb = sb[s];
          if (loaded < proj_end) {
            load(s);
            ++loaded;
          }
          const int kk = cc * 128 + 32 * c;
          w4_chunk_mma<1, kScaleAfter>(a4, b4, pa, pb, xl, xl, has_x && kk < m.k, false, kk, acc, acc1);
          int nt = ct;
          for (cc += W; cc >= chunks; cc -= chunks) ++nt;
          if (nt != ct) {  // this warp is done with tile ct
            float* p = region + ((ct - r0) * W + warp) * 4 * 32 + lane;
#pragma unroll
            for (int j = 0; j < 4; ++j) {
              p[j * 32] = acc[0][j] + acc1[0][j];
              acc[0][j] = acc1[0][j] = 0.f;
            }
            ct = nt;
          }
        }
      }
      gi = end;
      __syncthreads();
      for (int i = threadIdx.x; i < rtiles * 64; i += kPersistentThreads) {
        const int t = i >> 6, j = (i >> 5) & 1, l = i & 31;
        float s0 = 0.f, s1 = 0.f;
#pragma unroll 4
        for (int q = 0; q < W; ++q) {
          const float* p = region + (t * W + q) * 4 * 32 + l;
          s0 += p[j * 32];
          s1 += p[(j + 2) * 32];
        }
        gemv_epilogue(epilogue, first + r0 + t, l >> 2, 2 * (l & 3) + j, 1, s0, s1, m.n);  // warp-uniform
      }
      __syncthreads();
    }
  };

  // The ring's loads held back at the end of a projection, in item order (item gi + t goes to slot
  // (gi + t) % depth), issued between the block's arrival and its wait.
  // Items [loaded, gi + depth) are due: none where this warp had no item in the projection.
  auto refill = [&]() {
    const int e = loaded % kPersistentDepth, n = gi + kPersistentDepth - loaded;
#pragma unroll
    for (int s = 0; s < kPersistentDepth; ++s)
      if (s >= e && s - e < n) load(s);
#pragma unroll
    for (int s = 0; s < kPersistentDepth; ++s)
      if (s < e && s + kPersistentDepth - e < n) load(s);
    loaded = gi + kPersistentDepth;
  };
  auto nothing = [] {};
  float* const stats_attn = a.stats;                   // down -> next QKV
  float* const stats_mlp = a.stats + a.stats_stride;   // O -> gate/up
  // x = RMSNorm(residual) * gamma from the tile sums the last residual epilogue left.
  auto norm_from = [&](const float* stats, const __half* gamma) {
    NormInput<__half> in;
    in.residual = a.residual;
    in.stats = stats;
    in.stats_stride = a.stats_stride;
    in.gamma = gamma;
    in.eps = a.eps;
    GemvXNorm<__half>{in}.template prologue<kPersistentThreads>(xs, a.hidden, 1);
  };
  for (int li = 0; li < a.num_layers; ++li) {
    const PersistentLayer& L = a.layers[li];
    // QKV with the norm prologue and the rotary / KV-store epilogue
    if (li == 0) {  // the embedding row; block 0 writes it to the residual for the O epilogue to add to
      NormInput<__half> in;
      in.embed = a.embed;
      in.ids = a.ids;
      in.vocab = a.vocab;
      in.residual_out = a.residual;
      in.gamma = L.attn_norm;
      in.eps = a.eps;
      GemvXNorm<__half>{in}.template prologue<kPersistentThreads>(xs, a.hidden, 1);
    } else {
      norm_from(stats_attn, L.attn_norm);
    }
    project(li, kProjQkv, persistent_rope_policy(a, L));
    persistent_grid_barrier(a.barrier, phase, refill);
    persistent_stamp(a, 1 + 5 * li);
    {  // attention: blocks (KV head, split); meanwhile L2 gets the weights after the rings' (HBM is idle)
      prefetch_l2(a.prefetch_chunks);
      int len, lo, splits, per;
      persistent_splits(a, len, lo, splits, per);
      const int item = blockIdx.x;
      if (item < a.kv_heads * splits) {
        const int h = item % a.kv_heads, split = item / a.kv_heads;
        const int p0 = lo + split * per;
        if (a.heads <= 4 * a.kv_heads)  // 4 query heads a KV head or fewer: half the accumulators
          persistent_attention_item<4>(a, L, h, split, p0, min(len, p0 + per), region);
        else
          persistent_attention_item<kPersistentMaxGroup>(a, L, h, split, p0, min(len, p0 + per), region);
      }
    }
    persistent_grid_barrier(a.barrier, phase, nothing);
    persistent_stamp(a, 2 + 5 * li);
    persistent_merge_attention(a, xs, region);
    project(li, kProjO, GemvResidualStats<__half>{ResidualOutput<__half>{a.residual, stats_mlp, a.stats_stride, nullptr}});
    persistent_grid_barrier(a.barrier, phase, refill);
    persistent_stamp(a, 3 + 5 * li);
    norm_from(stats_mlp, L.mlp_norm);
    project(li, kProjGateUp, GemvGateUpSilu<__half>{a.act});
    persistent_grid_barrier(a.barrier, phase, refill);
    persistent_stamp(a, 4 + 5 * li);
    persistent_stage_x(a.act, a.inter, xs);
    project(li, kProjDown, GemvResidualStats<__half>{ResidualOutput<__half>{a.residual, stats_attn, a.stats_stride, nullptr}});
    if (li + 1 < a.num_layers || a.phase_ns) persistent_grid_barrier(a.barrier, phase, refill);
    persistent_stamp(a, 5 + 5 * li);
  }
}

}  // namespace detail

/// Why the persistent decode step cannot run a model (empty: it can). hidden, inter, heads, KV
/// heads, head_dim and the 4-bit group as the model has them.
inline std::string persistent_decode_unsupported(int hidden, int inter, int heads, int kv_heads, int head_dim,
                                                  int group) {
  if (kv_heads <= 0 || heads % kv_heads != 0 || heads / kv_heads > kPersistentMaxGroup)
    return "more than 8 query heads per KV head";
  if (head_dim % 16 != 0 || head_dim > 128) return "head_dim not a multiple of 16 up to 128";
  if (hidden % 16 != 0 || inter % 8 != 0) return "sizes not multiples of 16 (hidden) / 8 (inter)";
  if (group != 32 && group != 64 && group != 128) return "a 4-bit group other than 32, 64 or 128";
  return {};
}

/// The shared memory one persistent block needs for a model of these sizes.
inline size_t persistent_decode_smem(int hidden, int inter, int heads, int kv_heads, int head_dim) {
  const int max_k = std::max({hidden, inter, heads * head_dim});
  return detail::persistent_x_bytes(max_k) +
         std::max(detail::persistent_partial_bytes(), detail::persistent_attention_bytes(heads / kv_heads, head_dim));
}

/// The blocks the persistent kernel runs (all resident at once: one an SM where it fits), or 0
/// where it does not fit an SM at all. The blocks must all be resident: a plain launch, so a second
/// persistent kernel running at the same time (another model's stream, MPS, SM partitions) could
/// leave some unscheduled and the barrier waiting (a cooperative launch would turn that into a
/// launch error; not done yet). kScaleAfter: the model's group is 128 (the scale applied to
/// the fp32 sums, as gemv_w4's kStream); a model type compiles the kernels of its own group only.
template <bool kScaleAfter>
int persistent_decode_grid(size_t smem) {
  int dev = 0, limit = 0;
  TURBINE_CUDA_CHECK(cudaGetDevice(&dev));
  TURBINE_CUDA_CHECK(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  const auto kernel = detail::persistent_decode_kernel<kScaleAfter>;
  cudaFuncAttributes attr{};
  TURBINE_CUDA_CHECK(cudaFuncGetAttributes(&attr, kernel));
  if (smem + attr.sharedSizeBytes > size_t(limit)) return 0;  // the norm prologue's static arrays too
  TURBINE_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  int per_sm = 0;
  TURBINE_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, detail::kPersistentThreads, smem));
  return per_sm >= 1 ? device_sm_count() : 0;
}

/// Enqueues one persistent decode step on `stream` with `grid` blocks (persistent_decode_grid).
template <bool kScaleAfter>
void persistent_decode(const PersistentStep& a, int grid, size_t smem, cudaStream_t stream) {
  check(grid > 0, "persistent_decode: the kernel does not fit an SM");
  const int max_k = std::max({a.hidden, a.inter, a.heads * a.head_dim});
  const int x_bytes = static_cast<int>(detail::persistent_x_bytes(max_k));
  detail::persistent_decode_kernel<kScaleAfter><<<grid, detail::kPersistentThreads, smem, stream>>>(a, x_bytes);
  TURBINE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace turbine::cuda
