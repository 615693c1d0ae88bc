#pragma once
// The decode GEMV with the small ops around it folded in, so that a decode layer is five kernels
// (QKV, attention, O, gate/up, down) instead of ten. Batch-1 decode of a small model is bound by
// the number of dependent launches, not by bytes: each fold removes one kernel from the chain.
//
//   gemv_norm       x = rms_norm(residual (+ delta)) * gamma, computed by every block from the fp32
//                   residual row itself (hidden is small and hot in L2) and staged in shared memory;
//                   block 0 writes residual + delta back to another buffer (the other blocks never
//                   read that write, so there is no dependency between blocks). Layer 0 takes the
//                   residual from the embedding table instead (the gather is folded in too).
//   gemv_silu_mul   x = silu(gate) * up from the fused gate/up output, computed per 16-byte chunk
//                   as the GEMV reads it. Every block recomputes it over all of k, on the lanes that
//                   hold a token: in the decode chain this measured slower than the silu kernel.
//   gemv_gate_up_silu  the gate/up projection with silu(gate) * up as its epilogue: a block takes
//                   gate rows i .. i+7 and the matching up rows, so each thread holds both factors of
//                   its outputs (no recomputation; optionally with the gemv_norm prologue).
//   gemv_norm_rope  the QKV projection: gemv_norm, then the bias, the rotary embedding of q and k and
//                   the store of k and v into the KV cache at each token's position. A block takes
//                   rows i .. i+7 and i+D/2 .. i+D/2+7 of one head (D = head_dim), so each thread
//                   holds both halves of its rotary pairs.
//   gemv_rope       the same epilogue on x as stored (a chain whose norms are kernels of their own).
// Rounding is the unfused chain's: x is rounded to T before the product, outputs once to T.
#include <cstddef>
#include <cstdint>

#include "gemv.cuh"
#include "paged_kv.cuh"

namespace turbine::cuda {

/// gemv_norm stages tokens x (k + 8) elements of x in shared memory, at most this many bytes.
inline constexpr size_t kGemvNormMaxSmem = 160 * 1024;

/// Whether gemv_norm / gemv_norm_rope take `tokens` rows of hidden size k (else: rms_norm + gemv).
template <HalfElement T>
constexpr bool gemv_norm_supported(int tokens, int k) {
  return tokens >= 1 && tokens <= kGemvMaxTokens && size_t(tokens) * (k + 8) * sizeof(T) <= kGemvNormMaxSmem;
}

/// A GEMV input that is a normalized residual-stream row.
template <HalfElement T>
struct NormInput {
  const float* residual = nullptr;  ///< [tokens, k] fp32, or null: the residual is embed[ids[t]]
  const T* delta = nullptr;         ///< [tokens, k] added to the residual first, or null
  const T* embed = nullptr;         ///< [vocab, k] (when residual is null)
  const int32_t* ids = nullptr;     ///< [tokens] device (when residual is null); outside [0, vocab): NaN row
  int vocab = 0;                    ///< rows of embed (the valid range of ids)
  const T* gamma = nullptr;         ///< [k] RMSNorm weight
  float eps = 1e-5f;                ///< RMSNorm epsilon, added to the mean square
  float* residual_out = nullptr;    ///< [tokens, k]: gets residual (+ delta), or null; must not alias residual
  /// Precomputed sums of squares of the residual rows, one per 16-row tile ([tokens, stats_stride],
  /// ceil(k / 16) used; gemv_residual writes them), or null. With them the residual is final (delta
  /// must be null) and each block normalizes in one pass, without reducing k itself: what makes the
  /// norm prologue affordable at large hidden sizes, where hundreds of blocks would each redo it.
  const float* stats = nullptr;
  int stats_stride = 0;  ///< floats per token row of stats
};

/// Where gemv_residual puts its result: residual += y (y rounded to T first, as the unfused chain
/// rounds the projection before its add), and per 16-row tile the sum of squares of the updated
/// rows, for the next norm (NormInput::stats).
template <HalfElement T>
struct ResidualOutput {
  float* residual = nullptr;  ///< [tokens, n] fp32, updated in place
  float* stats = nullptr;     ///< [tokens, stats_stride]: entry tile = sum over rows 16 tile .. 16 tile + 15
  int stats_stride = 0;       ///< floats per token row of stats (at least ceil(n / 16))
  const T* bias = nullptr;    ///< [n] or null, added before the rounding
};

/// Rotary embedding and KV-cache store of a QKV projection of (heads + 2 * kv_heads) * head_dim rows.
template <HalfElement T>
struct RopeKvOutput {
  T* q = nullptr;                   ///< [tokens, heads * head_dim] rotated queries
  T* const* k_caches = nullptr;     ///< [tokens] device: token t's key cache [positions, kv_heads * head_dim]
  T* const* v_caches = nullptr;     ///< [tokens] device: token t's value cache, same layout
  const int* positions = nullptr;   ///< [tokens] device: where token t goes in its cache
  const float* inv_freq = nullptr;  ///< [head_dim / 2] device: rotary frequency of each pair
  const T* bias = nullptr;          ///< [(heads + 2 * kv_heads) * head_dim] or null
  PagedKvTable table;               ///< paged caches: token t's position p is row table.row(t, p); none: row p
  /// query heads, KV heads, elements per head
  ///@{
  int heads = 0, kv_heads = 0, head_dim = 0;
  ///@}
};

namespace detail {

// x = rms_norm(residual) * gamma for `tokens` rows of k from their 16-row tile sums of squares
// ([tokens, stride]), by the whole block, rows of x out_stride apart: each warp adds one token's
// sums in a fixed order (every block gets the same bits), then one pass over the rows.
template <HalfElement T>
__device__ __forceinline__ void norm_from_tile_sums(const float* stats, int stride, const float* residual,
                                                    const T* gamma, float eps, int k, int tokens, T* x,
                                                    int out_stride) {
  __shared__ float inv_s[kGemvMaxTokens];
  auto ld4 = [](const float* p) { return *reinterpret_cast<const float4*>(p); };
  const int lane = threadIdx.x & 31, warps = static_cast<int>(blockDim.x) >> 5;
  const int tiles = (k + kGemvRows - 1) / kGemvRows;
  // Every batch of loads is issued before its first use (in a plain loop each load waited for the
  // one before it, a round trip to memory each; the sums keep their order and their bits).
  constexpr int kSums = 8;
  for (int t = static_cast<int>(threadIdx.x) >> 5; t < tokens; t += warps) {
    const float* st = stats + static_cast<int64_t>(t) * stride;
    float s = 0.f;
    for (int i0 = lane; i0 < tiles; i0 += 32 * kSums) {
      float v[kSums];
#pragma unroll
      for (int u = 0; u < kSums; ++u) v[u] = i0 + 32 * u < tiles ? st[i0 + 32 * u] : 0.f;
#pragma unroll
      for (int u = 0; u < kSums; ++u) s += v[u];
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    if (lane == 0) inv_s[t] = rsqrtf(s / static_cast<float>(k) + eps);
  }
  __syncthreads();
  const int nv = k / 8;
  for (int t = 0; t < tokens; ++t) {
    const float inv = inv_s[t];
    const float* rt = residual + static_cast<int64_t>(t) * k;
    // One row of 8 a thread per pass: two at once (all loads first) spilled the persistent kernel.
    for (int i = threadIdx.x; i < nv; i += blockDim.x) {
      float gm[8], v[8];
      vec::load8(gamma + i * 8, gm);
      const float4 lo = ld4(rt + i * 8), hi = ld4(rt + i * 8 + 4);
      v[0] = lo.x, v[1] = lo.y, v[2] = lo.z, v[3] = lo.w, v[4] = hi.x, v[5] = hi.y, v[6] = hi.z, v[7] = hi.w;
#pragma unroll
      for (int e = 0; e < 8; ++e) v[e] = (v[e] * inv) * gm[e];
      *reinterpret_cast<uint4*>(x + static_cast<int64_t>(t) * out_stride + i * 8) = vec::pack8<T>(v);
    }
  }
  __syncthreads();
}

// kPerCountPrologue selects the prologue: false (the default) loops over the tokens at run time,
// one copy of the code; true switches to a copy compiled for each token count 1-8, whose loops
// unroll over the tokens with no per-token guards. The per-count copies made each of these kernels
// about 18,000 PTX lines (16 kernels: most of a model's CUDA compile time); bench_cuda_kernels
// times both (gemv_norm vs gemv_norm_per_count).
template <HalfElement T, bool kPerCountPrologue = false>
struct GemvXNorm {
  NormInput<T> in;

  // Row stride of the staged x: 8 elements of padding keep the 8 token rows on different banks.
  static size_t smem_bytes(int tokens, int k) { return size_t(tokens) * (k + 8) * sizeof(T); }

  __device__ __forceinline__ void row8(int t, int idx, int k, float (&v)[8]) const {
    if (in.residual) {
      vec::load8(in.residual + static_cast<int64_t>(t) * k + idx, v);
      if (in.delta) {
        float d[8];
        vec::load8(in.delta + static_cast<int64_t>(t) * k + idx, d);
#pragma unroll
        for (int e = 0; e < 8; ++e) v[e] += d[e];
      }
    } else {
      const int32_t id = in.ids[t];
      if (id < 0 || id >= in.vocab) {
#pragma unroll
        for (int e = 0; e < 8; ++e) v[e] = __int_as_float(0x7fc00000);
      } else {
        vec::load8(in.embed + static_cast<int64_t>(id) * k + idx, v);
      }
    }
  }

  // Two passes over the rows (the second hits L1): the sums of squares, then x = v * inv * gamma.
  template <int kThreads>
  __device__ __forceinline__ void prologue(T* xs, int k, int tokens) const {
    if (in.stats) return prologue_stats<kThreads>(xs, k, tokens);
    if constexpr (!kPerCountPrologue) {
      prologue_loop<kThreads>(xs, k, tokens);
    } else {
      switch (tokens) {
        case 1: return prologue_n<kThreads, 1>(xs, k);
        case 2: return prologue_n<kThreads, 2>(xs, k);
        case 3: return prologue_n<kThreads, 3>(xs, k);
        case 4: return prologue_n<kThreads, 4>(xs, k);
        case 5: return prologue_n<kThreads, 5>(xs, k);
        case 6: return prologue_n<kThreads, 6>(xs, k);
        case 7: return prologue_n<kThreads, 7>(xs, k);
        default: return prologue_n<kThreads, 8>(xs, k);
      }
    }
  }

  // The token loop outside: each token's partial sums go to shared memory as they are done, so the
  // one barrier between the passes serves every token. Sums in the same order as prologue_n: the
  // two prologues give bit-identical x.
  template <int kThreads>
  __device__ __forceinline__ void prologue_loop(T* xs, int k, int tokens) const {
    static_assert(kThreads % 32 == 0);
    constexpr int kWarpsHere = kThreads / 32;
    __shared__ float red[kGemvMaxTokens][kWarpsHere];
    const int nv = k / 8;
    for (int t = 0; t < tokens; ++t) {
      float ss = 0.f;
      for (int i = threadIdx.x; i < nv; i += kThreads) {
        float v[8];
        row8(t, i * 8, k, v);
#pragma unroll
        for (int e = 0; e < 8; ++e) ss += v[e] * v[e];
      }
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
      if ((threadIdx.x & 31) == 0) red[t][threadIdx.x >> 5] = ss;
    }
    __syncthreads();
    const bool write_residual = in.residual_out != nullptr && blockIdx.x == 0;
    for (int t = 0; t < tokens; ++t) {
      float s = 0.f;
#pragma unroll
      for (int w = 0; w < kWarpsHere; ++w) s += red[t][w];
      const float inv = rsqrtf(s / static_cast<float>(k) + in.eps);
      for (int i = threadIdx.x; i < nv; i += kThreads) {
        float gm[8], v[8];
        vec::load8(in.gamma + i * 8, gm);
        row8(t, i * 8, k, v);
        if (write_residual) vec::store8(in.residual_out + static_cast<int64_t>(t) * k + i * 8, v);
#pragma unroll
        for (int e = 0; e < 8; ++e) v[e] = (v[e] * inv) * gm[e];
        *reinterpret_cast<uint4*>(xs + t * (k + 8) + i * 8) = vec::pack8<T>(v);
      }
    }
    __syncthreads();
  }

  // With precomputed tile sums: one pass x = residual * inv * gamma (norm_from_tile_sums).
  template <int kThreads>
  __device__ __forceinline__ void prologue_stats(T* xs, int k, int tokens) const {
    norm_from_tile_sums(in.stats, in.stats_stride, in.residual, in.gamma, in.eps, k, tokens, xs, k + 8);
  }

  template <int kThreads, int kTokens>
  __device__ __forceinline__ void prologue_n(T* xs, int k) const {
    static_assert(kThreads % 32 == 0);
    constexpr int kWarpsHere = kThreads / 32;
    __shared__ float red[kTokens][kWarpsHere];
    const int nv = k / 8;
    float ss[kTokens];
#pragma unroll
    for (int t = 0; t < kTokens; ++t) ss[t] = 0.f;
    for (int i = threadIdx.x; i < nv; i += kThreads) {
#pragma unroll
      for (int t = 0; t < kTokens; ++t) {
        float v[8];
        row8(t, i * 8, k, v);
#pragma unroll
        for (int e = 0; e < 8; ++e) ss[t] += v[e] * v[e];
      }
    }
#pragma unroll
    for (int t = 0; t < kTokens; ++t) {
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) ss[t] += __shfl_xor_sync(0xffffffffu, ss[t], o);
      if ((threadIdx.x & 31) == 0) red[t][threadIdx.x >> 5] = ss[t];
    }
    __syncthreads();
    float inv[kTokens];
#pragma unroll
    for (int t = 0; t < kTokens; ++t) {
      float s = 0.f;
#pragma unroll
      for (int w = 0; w < kWarpsHere; ++w) s += red[t][w];
      inv[t] = rsqrtf(s / static_cast<float>(k) + in.eps);
    }
    const bool write_residual = in.residual_out != nullptr && blockIdx.x == 0;
    for (int i = threadIdx.x; i < nv; i += kThreads) {
      float gm[8];
      vec::load8(in.gamma + i * 8, gm);
#pragma unroll
      for (int t = 0; t < kTokens; ++t) {
        float v[8];
        row8(t, i * 8, k, v);
        if (write_residual) vec::store8(in.residual_out + static_cast<int64_t>(t) * k + i * 8, v);
#pragma unroll
        for (int e = 0; e < 8; ++e) v[e] = (v[e] * inv[t]) * gm[e];
        *reinterpret_cast<uint4*>(xs + t * (k + 8) + i * 8) = vec::pack8<T>(v);
      }
    }
    __syncthreads();
  }

  struct Lane {
    const T* p;
    __device__ __forceinline__ uint4 operator()(int kk) const { return *reinterpret_cast<const uint4*>(p + kk); }
  };
  __device__ __forceinline__ Lane lane(int tok, int k, int off, const T* xs) const { return {xs + tok * (k + 8) + off}; }
};

template <HalfElement T>
struct GemvXSiluMul {
  const T* gate_up;  // [tokens, 2 * k]: gate, then up
  static size_t smem_bytes(int, int) { return 0; }
  template <int kThreads>
  __device__ __forceinline__ void prologue(T*, int, int) const {}
  struct Lane {
    const T* p;
    int k;
    __device__ __forceinline__ uint4 operator()(int kk) const {
      float g[8], u[8];
      vec::unpack8<T>(vec::load_nc(p + kk), g);
      vec::unpack8<T>(vec::load_nc(p + k + kk), u);
#pragma unroll
      for (int e = 0; e < 8; ++e) g[e] = g[e] / (1.0f + expf(-g[e])) * u[e];  // as silu_mul rounds it
      return vec::pack8<T>(g);
    }
  };
  __device__ __forceinline__ Lane lane(int tok, int k, int off, const T*) const {
    return {gate_up + static_cast<int64_t>(tok) * 2 * k + off, k};
  }
};

// Rows [0, heads * D) are q, then kv_heads * D of k, then of v. Blocks in the q and k parts take
// rows h*D + 8b + [0, 8) and h*D + D/2 + 8b + [0, 8) (b < D/16): rotary partners.
template <HalfElement T>
struct GemvRopeKv {
  RopeKvOutput<T> o;
  __device__ __forceinline__ void rows(int blk, int g, int, int& ra, int& rb) const {
    const int r0 = blk * kGemvRows, d = o.head_dim;
    if (r0 < (o.heads + o.kv_heads) * d) {
      const int h = r0 / d, b = (r0 - h * d) >> 4;
      ra = h * d + 8 * b + g;
      rb = ra + d / 2;
    } else {
      ra = r0 + g;
      rb = ra + 8;
    }
  }
  __device__ __forceinline__ void store(int blk, int g, int tok, float sa, float sb, int n) const {
    int ra, rb;
    rows(blk, g, n, ra, rb);
    if (o.bias) {
      sa += to_float(o.bias[ra]);
      sb += to_float(o.bias[rb]);
    }
    const int d = o.head_dim, q_rows = o.heads * d, kv_rows = o.kv_heads * d;
    const int64_t pos = o.positions[tok];
    const int64_t row = o.table.row(tok, static_cast<int>(pos));
    if (ra < q_rows + kv_rows) {
      const int i = ra % d;  // < d / 2
      float s, c;
      sincosf(static_cast<float>(pos) * o.inv_freq[i], &s, &c);
      const float xa = sa * c - sb * s, xb = sb * c + sa * s;
      if (ra < q_rows) {
        T* q = o.q + static_cast<int64_t>(tok) * q_rows;
        q[ra] = from_float<T>(xa);
        q[rb] = from_float<T>(xb);
      } else {
        T* kc = o.k_caches[tok] + row * kv_rows;
        kc[ra - q_rows] = from_float<T>(xa);
        kc[rb - q_rows] = from_float<T>(xb);
      }
    } else {
      T* vc = o.v_caches[tok] + row * kv_rows;
      vc[ra - q_rows - kv_rows] = from_float<T>(sa);
      vc[rb - q_rows - kv_rows] = from_float<T>(sb);
    }
  }
};

// Rows [0, n/2) are gate, [n/2, n) up. Block b takes gate rows 8b + [0, 8) and the same up rows and
// writes act[tok, 8b + g] = silu(gate) * up (fp32, rounded once). n/2: a multiple of 8.
template <HalfElement T>
struct GemvGateUpSilu {
  T* act;  // [tokens, n / 2]
  __device__ __forceinline__ void rows(int blk, int g, int n, int& ra, int& rb) const {
    ra = blk * 8 + g;
    rb = n / 2 + ra;
  }
  __device__ __forceinline__ void store(int blk, int g, int tok, float sa, float sb, int n) const {
    const int inter = n / 2;
    act[static_cast<int64_t>(tok) * inter + blk * 8 + g] = from_float<T>(sa / (1.0f + expf(-sa)) * sb);
  }
};

// residual[tok, row] += T(sum + bias) for rows 16 blk + g and + 8; the 8 lanes g = 0..7 that hold
// one token then add their squares (warp shuffles: gemv_epilogue calls every lane) and lane g = 0
// writes the tile's entry. Rows are updated in place: each is read and written by one thread only.
template <HalfElement T>
struct GemvResidualStats {
  ResidualOutput<T> o;
  static constexpr bool kWarpStore = true;
  __device__ __forceinline__ void rows(int blk, int g, int n, int& ra, int& rb) const {
    ra = min(blk * kGemvRows + g, n - 1);
    rb = min(blk * kGemvRows + g + 8, n - 1);
  }
  __device__ __forceinline__ void warp_store(int blk, int g, int tok, int tokens, float sa, float sb, int n) const {
    float sq = 0.f;
    if (tok < tokens) {
      float* rt = o.residual + static_cast<int64_t>(tok) * n;
      const int r = blk * kGemvRows + g;
      if (r < n) {
        const float v = rt[r] + to_float(from_float<T>(o.bias ? sa + to_float(o.bias[r]) : sa));
        rt[r] = v;
        sq += v * v;
      }
      if (r + 8 < n) {
        const float v = rt[r + 8] + to_float(from_float<T>(o.bias ? sb + to_float(o.bias[r + 8]) : sb));
        rt[r + 8] = v;
        sq += v * v;
      }
    }
    // lanes 4 g + c: the same token for every g
    sq += __shfl_xor_sync(0xffffffffu, sq, 4);
    sq += __shfl_xor_sync(0xffffffffu, sq, 8);
    sq += __shfl_xor_sync(0xffffffffu, sq, 16);
    if (g == 0 && tok < tokens) o.stats[static_cast<int64_t>(tok) * o.stats_stride + blk] = sq;
  }
};

template <HalfElement T>
void check_residual_output(const char* what, const ResidualOutput<T>& o, int n) {
  check(o.residual != nullptr && o.stats != nullptr, what, ": needs residual and stats");
  check(o.stats_stride >= (n + kGemvRows - 1) / kGemvRows, what, ": stats_stride ", o.stats_stride, " is less than the ",
        (n + kGemvRows - 1) / kGemvRows, " tiles of n = ", n);
}

template <HalfElement T>
void check_rope_output(const char* what, const RopeKvOutput<T>& out) {
  check(out.heads > 0 && out.kv_heads > 0 && out.head_dim > 0 && out.head_dim % 16 == 0, what, ": bad sizes (heads ",
        out.heads, ", kv_heads ", out.kv_heads, ", head_dim ", out.head_dim, "; head_dim must be a multiple of 16)");
  check(out.q && out.k_caches && out.v_caches && out.positions && out.inv_freq, what,
        ": q, caches, positions and inv_freq are required");
}

template <HalfElement T>
void check_norm_input(const char* what, const NormInput<T>& in, int tokens, int k) {
  check(tokens >= 1 && tokens <= kGemvMaxTokens, what, ": ", tokens, " tokens is not supported (supported: 1 to ",
        kGemvMaxTokens, ")");
  check(k > 0 && k % 8 == 0, what, ": k = ", k, " is not supported (k must be a multiple of 8)");
  check(gemv_norm_supported<T>(tokens, k), what, ": ", tokens, " tokens of hidden size ", k,
        " do not fit in shared memory (supported: tokens * (hidden + 8) * 2 bytes <= ", kGemvNormMaxSmem, ")");
  check(in.gamma != nullptr && (in.residual != nullptr || (in.embed != nullptr && in.ids != nullptr && in.vocab > 0)),
        what, ": needs gamma and either a residual or an embedding table with ids");
  check(aligned16(in.residual) && aligned16(in.delta) && aligned16(in.embed) && aligned16(in.gamma) &&
            aligned16(in.residual_out),
        what, ": pointers must be 16-byte aligned");
  check(in.residual_out == nullptr || in.residual_out != in.residual, what,
        ": residual_out must not alias residual (the other blocks still read it)");
  check(in.stats == nullptr || (in.residual != nullptr && in.delta == nullptr && in.residual_out == nullptr &&
                                in.stats_stride >= (k + kGemvRows - 1) / kGemvRows),
        what, ": stats need a final residual (no delta, no residual_out) and stats_stride >= ceil(k / 16)");
}

}  // namespace detail

/// y = rms_norm(residual (+ delta)) * gamma  x  W^T (+ bias) for 1..8 tokens, with residual + delta
/// written to in.residual_out (if set). w: [n, k] T, y: [tokens, n] T or float. See NormInput.
template <HalfElement T, VecElement Y>
void gemv_norm(const T* w, const NormInput<T>& in, const T* bias, Y* y, int tokens, int n, int k,
               cudaStream_t stream = nullptr, bool prefetch_weights = true) {
  check(n > 0, "gemv_norm: bad sizes (n ", n, ", k ", k, ")");
  if (tokens == 0) return;
  detail::check_norm_input("gemv_norm", in, tokens, k);
  check(aligned16(w), "gemv_norm: w must be 16-byte aligned");
  const bool pdl = prefetch_weights && pdl_available();
  detail::launch_gemv<T>(w, n, k, tokens, detail::GemvXNorm<T>{in}, detail::GemvStore<Y, T>{y, bias}, stream, pdl);
  TURBINE_CUDA_CHECK(cudaGetLastError());
}

/// residual += x W^T (+ bias), rounded to T before the add, for 1..8 tokens, with the sums of squares
/// of the updated rows per 16-row tile in out.stats (for the next gemv_norm: NormInput::stats).
/// w: [n, k] T, x: [tokens, k] T, out.residual: [tokens, n] fp32.
template <HalfElement T>
void gemv_residual(const T* w, const T* x, const ResidualOutput<T>& out, int tokens, int n, int k,
                   cudaStream_t stream = nullptr, bool prefetch_weights = true) {
  check(n > 0 && k > 0 && k % 8 == 0, "gemv_residual: bad sizes (n ", n, ", k ", k, "; k must be a multiple of 8)");
  check(aligned16(w) && aligned16(x), "gemv_residual: w and x must be 16-byte aligned");
  check(tokens >= 0 && tokens <= kGemvMaxTokens, "gemv_residual: ", tokens, " tokens is not supported (supported: 1 to ",
        kGemvMaxTokens, ")");
  if (tokens == 0) return;
  detail::check_residual_output("gemv_residual", out, n);
  const bool pdl = prefetch_weights && pdl_available();
  detail::launch_gemv<T>(w, n, k, tokens, detail::GemvX<T>{x}, detail::GemvResidualStats<T>{out}, stream, pdl);
  TURBINE_CUDA_CHECK(cudaGetLastError());
}

/// y = (silu(gate) * up) x W^T (+ bias) for 1..8 tokens. gate_up: [tokens, 2 * inter] T (gate
/// first), w: [n, inter], y: [tokens, n]. inter: a multiple of 8.
template <HalfElement T>
void gemv_silu_mul(const T* w, const T* gate_up, const T* bias, T* y, int tokens, int n, int inter,
                   cudaStream_t stream = nullptr, bool prefetch_weights = true) {
  check(n > 0 && inter > 0 && inter % 8 == 0, "gemv_silu_mul: bad sizes (n ", n, ", inter ", inter,
        "; inter must be a multiple of 8)");
  check(aligned16(w) && aligned16(gate_up), "gemv_silu_mul: w and gate_up must be 16-byte aligned");
  if (tokens == 0) return;
  const bool pdl = prefetch_weights && pdl_available();
  detail::launch_gemv<T>(w, n, inter, tokens, detail::GemvXSiluMul<T>{gate_up}, detail::GemvStore<T, T>{y, bias},
                         stream, pdl);
  TURBINE_CUDA_CHECK(cudaGetLastError());
}

/// act = silu(x W_gate^T) * (x W_up^T) for 1..8 tokens, in one pass over w = [gate; up]:
/// [2 * inter, k] (gate rows first), x: [tokens, k] T, act: [tokens, inter] T. inter: a multiple of 8.
template <HalfElement T>
void gemv_gate_up_silu(const T* w, const T* x, T* act, int tokens, int inter, int k, cudaStream_t stream = nullptr,
                       bool prefetch_weights = true) {
  check(inter > 0 && inter % 8 == 0 && k > 0 && k % 8 == 0, "gemv_gate_up_silu: bad sizes (inter ", inter, ", k ", k,
        "; both must be multiples of 8)");
  check(aligned16(w) && aligned16(x), "gemv_gate_up_silu: w and x must be 16-byte aligned");
  if (tokens == 0) return;
  const bool pdl = prefetch_weights && pdl_available();
  detail::launch_gemv<T>(w, 2 * inter, k, tokens, detail::GemvX<T>{x}, detail::GemvGateUpSilu<T>{act}, stream, pdl);
  TURBINE_CUDA_CHECK(cudaGetLastError());
}

/// gemv_gate_up_silu with x = rms_norm(residual (+ delta)) * gamma as gemv_norm (residual_out too).
template <HalfElement T>
void gemv_norm_gate_up_silu(const T* w, const NormInput<T>& in, T* act, int tokens, int inter, int k,
                            cudaStream_t stream = nullptr, bool prefetch_weights = true) {
  check(inter > 0 && inter % 8 == 0, "gemv_norm_gate_up_silu: inter = ", inter, " is not a multiple of 8");
  if (tokens == 0) return;
  detail::check_norm_input("gemv_norm_gate_up_silu", in, tokens, k);
  check(aligned16(w), "gemv_norm_gate_up_silu: w must be 16-byte aligned");
  const bool pdl = prefetch_weights && pdl_available();
  detail::launch_gemv<T>(w, 2 * inter, k, tokens, detail::GemvXNorm<T>{in}, detail::GemvGateUpSilu<T>{act}, stream,
                         pdl);
  TURBINE_CUDA_CHECK(cudaGetLastError());
}

/// The QKV projection of one decode step: x = rms_norm(residual (+ delta)) * gamma as gemv_norm,
/// qkv = x W^T + bias, then q rotated into out.q, k rotated and v stored into each token's caches at
/// out.positions[t]. w: [(heads + 2 * kv_heads) * head_dim, k]. head_dim: a multiple of 16.
template <HalfElement T>
void gemv_norm_rope(const T* w, const NormInput<T>& in, const RopeKvOutput<T>& out, int tokens, int k,
                    cudaStream_t stream = nullptr, bool prefetch_weights = true) {
  detail::check_rope_output("gemv_norm_rope", out);
  if (tokens == 0) return;
  detail::check_norm_input("gemv_norm_rope", in, tokens, k);
  check(aligned16(w), "gemv_norm_rope: w must be 16-byte aligned");
  const int n = (out.heads + 2 * out.kv_heads) * out.head_dim;
  const bool pdl = prefetch_weights && pdl_available();
  detail::launch_gemv<T>(w, n, k, tokens, detail::GemvXNorm<T>{in}, detail::GemvRopeKv<T>{out}, stream, pdl);
  TURBINE_CUDA_CHECK(cudaGetLastError());
}

/// gemv_norm_rope on x as stored ([tokens, k] T, normalized already): the QKV projection of a decode
/// chain whose norms are kernels of their own, with the rotary + KV-cache store as its epilogue.
template <HalfElement T>
void gemv_rope(const T* w, const T* x, const RopeKvOutput<T>& out, int tokens, int k, cudaStream_t stream = nullptr,
               bool prefetch_weights = true) {
  detail::check_rope_output("gemv_rope", out);
  check(tokens >= 0 && tokens <= kGemvMaxTokens, "gemv_rope: ", tokens, " tokens is not supported (supported: 1 to ",
        kGemvMaxTokens, ")");
  if (tokens == 0) return;
  check(k > 0 && k % 8 == 0, "gemv_rope: k = ", k, " is not supported (k must be a multiple of 8)");
  check(aligned16(w) && aligned16(x), "gemv_rope: w and x must be 16-byte aligned");
  const int n = (out.heads + 2 * out.kv_heads) * out.head_dim;
  const bool pdl = prefetch_weights && pdl_available();
  detail::launch_gemv<T>(w, n, k, tokens, detail::GemvX<T>{x}, detail::GemvRopeKv<T>{out}, stream, pdl);
  TURBINE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace turbine::cuda
