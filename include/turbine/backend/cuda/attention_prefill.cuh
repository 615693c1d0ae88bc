#pragma once
// Causal prefill attention on tensor cores, flash-attention-2 style: one block owns a tile of query
// rows of one head and streams the K/V tiles it can see through shared memory (cp.async pipeline);
// S = Q K^T and O += P V run on mma.sync m16n8k16 with fp32 accumulators, the softmax is online in
// registers, and no score matrix is ever written. Grouped-query heads, chunked prefill (queries
// start at pos0 with earlier positions already in the cache) and a sliding window are supported.
//
// The mma/ldmatrix helpers in namespace `attn` are shared with attention_decode.cuh; the cp.async
// ones are cp_async.cuh's.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "../cpu/attention.hpp"
#include "check.cuh"
#include "cp_async.cuh"
#include "kv_quant.cuh"
#include "paged_kv.cuh"
#include "types.cuh"

namespace turbine::cuda {

/// heads, kv_heads, head_dim, sliding_window (0: unlimited); the same struct as the CPU reference's.
using AttentionShape = cpu::AttentionShape;

namespace attn {

template <class T>
inline constexpr bool kIsHalf16 = std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>;

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// d += a * b for one m16n8k16 tile: a is 16x16 row-major (4 regs), b is 16x8 "col" (2 regs).
template <class T>
__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  if constexpr (std::is_same_v<T, __half>) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// Two floats as one register of T pairs; `lo` takes the lower column.
template <class T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  if constexpr (std::is_same_v<T, __half>) {
    const __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&h);
  } else {
    const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&h);
  }
}

// Element offset of 16-byte chunk `c` of row `row` in a [rows][HD] shared tile. The chunk index is
// XORed with the row so that the 8 row addresses of one ldmatrix hit 8 different bank groups.
template <int HD>
__device__ __forceinline__ int swz(int row, int c) {
  return row * HD + ((c ^ (row & 7)) << 3);
}

// 2^x on the special-function unit; 2^-inf = 0.
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}
__device__ __forceinline__ float quad_sum(float x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

inline constexpr float kLog2e = 1.4426950408889634f;

/// The kernel arguments of one prefill-attention launch (built by make_prefill_args()).
template <class T>
struct PrefillArgs {
  const T* q;        ///< [tokens, heads, HD]
  const T* k;        ///< [positions, kv_stride]: kv head h at + h * HD
  const T* v;        ///< [positions, kv_stride]
  T* out;            ///< [tokens, heads, HD]
  int64_t kv_stride;  ///< elements between consecutive cache rows (bytes with a quantized cache)
  PagedKvTable table;  ///< paged cache: position p is row table.row(0, p); no table: row p
  /// new query tokens; cache position of the first; query heads; query heads per KV head;
  /// sliding window (0: unlimited)
  ///@{
  int tokens, pos0, heads, group, window;
  ///@}
  float scale_log2;  ///< log2(e) / sqrt(HD)
};

// BM = 16 * MT * NW query rows per block: each of the NW warps owns MT m16 tiles (MT = 2 reuses every
// K/V fragment read from shared memory for two tiles, halving shared-memory traffic per mma).
// NS shared-memory stages of BN = 64 cache positions.
/// The tiling of prefill_kernel for head_dim HD, MT m16 tiles per warp, NW warps and NS stages;
/// with a quantized KV scheme the NS stages hold codes and params, dequantized into one T tile.
template <class T, int HD, int MT, int NW, int NS, class KV = kv::Same>
struct PrefillConfig {
  /// query rows per block; cache positions per stage; threads per block
  ///@{
  static constexpr int kBM = 16 * MT * NW, kBN = 64, kThreads = 32 * NW;
  ///@}
  /// the Q fragments stay in registers for the whole K/V loop (else re-read from shared memory)
  static constexpr bool kQInRegs = MT == 1;
  /// blocks per SM asked of __launch_bounds__ (1 leaves the large configuration more registers)
  static constexpr int kMinBlocks = (MT == 1 && HD == 128 && NW >= 8) ? 1 : 2;
  /// dynamic shared memory per block, in bytes: the Q tile plus NS stages of K and V tiles (quantized:
  /// one T tile of K and V plus NS stages of codes and params)
  static constexpr size_t kSmemBytes =
      size_t(kBM + 2 * (KV::quantized ? 1 : NS) * kBN) * HD * sizeof(T) + NS * kvq::stage_bytes<KV, HD, 64>();
};

template <class T, int HD, int MT, int NW, int NS, class KV = kv::Same>
__global__ static void __launch_bounds__(32 * NW, PrefillConfig<T, HD, MT, NW, NS>::kMinBlocks)
    prefill_kernel(const PrefillArgs<T> a) {
  using Cfg = PrefillConfig<T, HD, MT, NW, NS, KV>;
  constexpr int kBM = Cfg::kBM, kBN = Cfg::kBN, kCh = HD / 8, kThreads = Cfg::kThreads;
  constexpr bool kQuant = KV::quantized;
  constexpr int kTiles = kQuant ? 1 : NS;        // T tiles of K (and V): the stages, or the dequantized tile
  extern __shared__ __align__(128) unsigned char smem_raw[];
  T* const sq = reinterpret_cast<T*>(smem_raw);  // [BM][HD] swizzled
  T* const sk = sq + kBM * HD;                   // [kTiles][BN][HD]
  T* const sv = sk + kTiles * kBN * HD;          // [kTiles][BN][HD]
  unsigned char* const sc = reinterpret_cast<unsigned char*>(sv + kTiles * kBN * HD);  // quantized: [NS] KvStage

  const int h = blockIdx.x;
  const int m0 = (gridDim.y - 1 - blockIdx.y) * kBM;  // the longest (last) query tiles start first
  const int kvh = h / a.group;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int gid = lane >> 2, tig = lane & 3;
  const int kv_len = a.pos0 + a.tokens;
  const int q_first = a.pos0 + m0;
  const int q_last = min(a.pos0 + m0 + kBM, kv_len) - 1;
  const int lo = a.window > 0 ? max(0, q_first - a.window + 1) : 0;
  const int t_begin = lo / kBN, t_end = q_last / kBN + 1;
  const int n_tiles = t_end - t_begin;

  static_assert((kBM * kCh) % kThreads == 0 && (kBN * kCh) % kThreads == 0);
#pragma unroll
  for (int k = 0; k < kBM * kCh / kThreads; ++k) {
    const int i = tid + k * kThreads;
    const int r = i / kCh, c = i % kCh, t = m0 + r;
    const bool ok = t < a.tokens;
    const T* src = a.q + (int64_t(ok ? t : 0) * a.heads + h) * HD + c * 8;
    cp_async16(smem_u32(sq + swz<HD>(r, c)), src, ok);
  }
  const T* const kbase = kQuant ? nullptr : a.k + int64_t(kvh) * HD;
  const T* const vbase = kQuant ? nullptr : a.v + int64_t(kvh) * HD;
  auto load_kv = [&](int tile, int stage) {
    const int n0 = tile * kBN;
    if constexpr (kQuant) {
      kvq::KvStage<KV, HD, kBN>::template load<kThreads>(
          sc + stage * kvq::stage_bytes<KV, HD, 64>(), reinterpret_cast<const unsigned char*>(a.k),
          reinterpret_cast<const unsigned char*>(a.v), a.kv_stride, a.heads / a.group, kvh, tid,
          [&](int r, bool& ok) -> int64_t {
            const int p = n0 + r;
            ok = p < kv_len;
            return a.table.row(0, ok ? p : 0);
          });
      return;
    }
    T* const dk = sk + stage * kBN * HD;
    T* const dv = sv + stage * kBN * HD;
#pragma unroll
    for (int k = 0; k < kBN * kCh / kThreads; ++k) {
      const int i = tid + k * kThreads;
      const int r = i / kCh, c = i % kCh, p = n0 + r;
      const bool ok = p < kv_len;
      const int64_t off = a.table.row(0, ok ? p : 0) * a.kv_stride + c * 8;
      cp_async16(smem_u32(dk + swz<HD>(r, c)), kbase + off, ok);
      cp_async16(smem_u32(dv + swz<HD>(r, c)), vbase + off, ok);
    }
  };
#pragma unroll
  for (int s = 0; s < NS - 1; ++s) {
    if (s < n_tiles) load_kv(t_begin + s, s);
    cp_async_commit();  // the first group also carries Q
  }

  const int wr0 = warp * 16 * MT;  // the warp's first row in the block
  float o[MT][HD / 8][4];
  float m[MT][2], l[MT][2];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
    for (int j = 0; j < HD / 8; ++j) o[mt][j][0] = o[mt][j][1] = o[mt][j][2] = o[mt][j][3] = 0.f;
    m[mt][0] = m[mt][1] = -INFINITY;
    l[mt][0] = l[mt][1] = 0.f;
  }
  uint32_t qf[Cfg::kQInRegs ? HD / 16 : 1][4];

  for (int it = 0; it < n_tiles; ++it) {
    cp_async_wait<NS - 2>();
    __syncthreads();  // tile `it` is visible to all; the stage refilled below was drained last step
    {
      const int nxt = it + NS - 1;
      if (nxt < n_tiles) load_kv(t_begin + nxt, nxt % NS);
      cp_async_commit();
    }
    if constexpr (Cfg::kQInRegs) {
      if (it == 0) {
#pragma unroll
        for (int kk = 0; kk < HD / 16; ++kk)
          ldmatrix_x4(qf[kk], smem_u32(sq + swz<HD>(wr0 + (lane & 7) + ((lane >> 3) & 1) * 8, kk * 2 + (lane >> 4))));
      }
    }
    const int stage = kQuant ? 0 : it % NS;
    if constexpr (kQuant) {
      // Every warp finished the last tile's mma (the barrier above): dequantize into the T tiles.
      kvq::KvStage<KV, HD, kBN>::template dequant<T, kThreads>(
          sc + (it % NS) * kvq::stage_bytes<KV, HD, 64>(), tid, [&](int kv, int r, int c) { return (kv ? sv : sk) + swz<HD>(r, c); });
      __syncthreads();
    }
    const T* const ks = sk + stage * kBN * HD;
    const T* const vs = sv + stage * kBN * HD;
    const int n0 = (t_begin + it) * kBN;

    // S = Q K^T for the warp's rows and the tile's 64 positions.
    float s[MT][kBN / 8][4];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int j = 0; j < kBN / 8; ++j) s[mt][j][0] = s[mt][j][1] = s[mt][j][2] = s[mt][j][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < HD / 16; ++kk) {
      uint32_t af[MT][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        if constexpr (Cfg::kQInRegs) {
#pragma unroll
          for (int e = 0; e < 4; ++e) af[mt][e] = qf[kk][e];
        } else {
          ldmatrix_x4(af[mt], smem_u32(sq + swz<HD>(wr0 + mt * 16 + (lane & 7) + ((lane >> 3) & 1) * 8,
                                                     kk * 2 + (lane >> 4))));
        }
      }
#pragma unroll
      for (int np = 0; np < kBN / 16; ++np) {
        uint32_t bf[4];
        ldmatrix_x4(bf, smem_u32(ks + swz<HD>(np * 16 + (lane & 7) + ((lane >> 4) << 3), kk * 2 + ((lane >> 3) & 1))));
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          mma16816<T>(s[mt][2 * np], af[mt], bf[0], bf[1]);
          mma16816<T>(s[mt][2 * np + 1], af[mt], bf[2], bf[3]);
        }
      }
    }

    // Masks: causal (key after the query), past the end of the cache, before the sliding window.
    const bool need_mask = (n0 + kBN - 1 > q_first) || (n0 + kBN > kv_len) ||
                           (a.window > 0 && n0 < q_last - a.window + 1);
    if (need_mask) {
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int j = 0; j < kBN / 8; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int qp = q_first + wr0 + mt * 16 + gid + (e >> 1) * 8;
            const int kp = n0 + j * 8 + tig * 2 + (e & 1);
            const bool ok = kp <= qp && kp < kv_len && (a.window <= 0 || kp > qp - a.window);
            if (!ok) s[mt][j][e] = -INFINITY;
          }
    }

    // Online softmax: rescale the running output by exp(m_old - m_new), turn scores into P.
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int rr = 0; rr < 2; ++rr) {
        float mx = m[mt][rr];
#pragma unroll
        for (int j = 0; j < kBN / 8; ++j) mx = fmaxf(mx, fmaxf(s[mt][j][2 * rr], s[mt][j][2 * rr + 1]));
        mx = quad_max(mx);
        const float base = mx == -INFINITY ? 0.f : mx * a.scale_log2;  // all masked so far: no NaN
        const float alpha = fast_exp2(m[mt][rr] * a.scale_log2 - base);
        m[mt][rr] = mx;
        float sum = 0.f;
#pragma unroll
        for (int j = 0; j < kBN / 8; ++j) {
          const float p0 = fast_exp2(fmaf(s[mt][j][2 * rr], a.scale_log2, -base));
          const float p1 = fast_exp2(fmaf(s[mt][j][2 * rr + 1], a.scale_log2, -base));
          s[mt][j][2 * rr] = p0;
          s[mt][j][2 * rr + 1] = p1;
          sum += p0 + p1;
        }
        l[mt][rr] = l[mt][rr] * alpha + sum;  // per-thread partial; reduced over the quad at the end
#pragma unroll
        for (int j = 0; j < HD / 8; ++j) {
          o[mt][j][2 * rr] *= alpha;
          o[mt][j][2 * rr + 1] *= alpha;
        }
      }

    // O += P V: the score accumulators of two neighbouring n8 tiles are one A fragment.
#pragma unroll
    for (int kk = 0; kk < kBN / 16; ++kk) {
      uint32_t pf[MT][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        pf[mt][0] = pack2<T>(s[mt][2 * kk][0], s[mt][2 * kk][1]);
        pf[mt][1] = pack2<T>(s[mt][2 * kk][2], s[mt][2 * kk][3]);
        pf[mt][2] = pack2<T>(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
        pf[mt][3] = pack2<T>(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
      }
#pragma unroll
      for (int dp = 0; dp < HD / 16; ++dp) {
        uint32_t bf[4];
        ldmatrix_x4_trans(bf, smem_u32(vs + swz<HD>(kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, dp * 2 + (lane >> 4))));
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          mma16816<T>(o[mt][2 * dp], pf[mt], bf[0], bf[1]);
          mma16816<T>(o[mt][2 * dp + 1], pf[mt], bf[2], bf[3]);
        }
      }
    }
  }
  cp_async_wait<0>();

#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int rr = 0; rr < 2; ++rr) {
      const float sum = quad_sum(l[mt][rr]);
      const float inv = sum > 0.f ? 1.f / sum : 0.f;
      const int t = m0 + wr0 + mt * 16 + gid + rr * 8;
      if (t >= a.tokens) continue;
      T* const dst = a.out + (int64_t(t) * a.heads + h) * HD + tig * 2;
#pragma unroll
      for (int j = 0; j < HD / 8; ++j)
        *reinterpret_cast<uint32_t*>(dst + j * 8) = pack2<T>(o[mt][j][2 * rr] * inv, o[mt][j][2 * rr + 1] * inv);
    }
}

// Raises a kernel's dynamic shared-memory limit once per device: `raised` is the kernel's own
// host-side bitmask of devices already done (the call costs microseconds, a decode step has few).
template <class Kernel>
void raise_smem_limit(std::atomic<uint64_t>& raised, Kernel kernel, size_t bytes) {
  int dev = 0;
  TURBINE_CUDA_CHECK(cudaGetDevice(&dev));
  const uint64_t bit = uint64_t(1) << (dev & 63);
  if (raised.load(std::memory_order_acquire) & bit) return;
  TURBINE_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
  raised.fetch_or(bit, std::memory_order_release);
}

/// Launches one prefill configuration (the benchmark compares configurations through this).
template <class T, int HD, int MT, int NW, int NS, class KV = kv::Same>
void launch_prefill(const PrefillArgs<T>& a, cudaStream_t stream) {
  using Cfg = PrefillConfig<T, HD, MT, NW, NS, KV>;
  auto kernel = prefill_kernel<T, HD, MT, NW, NS, KV>;
  if constexpr (Cfg::kSmemBytes > 48 * 1024) {
    static std::atomic<uint64_t> raised{0};
    raise_smem_limit(raised, kernel, Cfg::kSmemBytes);
  }
  const dim3 grid(a.heads, (a.tokens + Cfg::kBM - 1) / Cfg::kBM);
  kernel<<<grid, Cfg::kThreads, Cfg::kSmemBytes, stream>>>(a);
  TURBINE_CUDA_CHECK(cudaGetLastError());
}

template <class T, KvScheme KV = kv::Same>
PrefillArgs<T> make_prefill_args(const T* q, const T* k_cache, const T* v_cache, T* out, int64_t tokens, int64_t pos0,
                                 const AttentionShape& s, int64_t kv_stride, PagedKvTable table = {}) {
  static_assert(kIsHalf16<T>, "attention_prefill: T must be __half or __nv_bfloat16");
  check(s.heads > 0 && s.kv_heads > 0 && s.heads % s.kv_heads == 0, "attention_prefill: heads (", s.heads,
        ") must be a positive multiple of kv_heads (", s.kv_heads, ")");
  check(tokens >= 0 && pos0 >= 0 && pos0 + tokens < (int64_t(1) << 31), "attention_prefill: tokens ", tokens,
        " at pos0 ", pos0, " out of range");
  if constexpr (KV::quantized) {
    const int64_t row = kv_row_bytes<T, KV>(s.kv_heads, s.head_dim);
    if (kv_stride == 0) kv_stride = row;
    check(kv_stride >= row && kv_stride % 16 == 0, "attention_prefill: kv_stride ", kv_stride, " bytes must be >= ",
          row, " (a quantized row) and a multiple of 16");
  } else {
    if (kv_stride == 0) kv_stride = s.kv_heads * s.head_dim;
    check(kv_stride >= s.kv_heads * s.head_dim && kv_stride % 8 == 0, "attention_prefill: kv_stride ", kv_stride,
          " must be >= kv_heads * head_dim and a multiple of 8 elements (16-byte rows)");
  }
  PrefillArgs<T> a{};
  a.q = q;
  a.k = k_cache;
  a.v = v_cache;
  a.out = out;
  a.kv_stride = kv_stride;
  a.table = table;
  a.tokens = int(tokens);
  a.pos0 = int(pos0);
  a.heads = int(s.heads);
  a.group = int(s.heads / s.kv_heads);
  a.window = int(s.sliding_window);
  a.scale_log2 = kLog2e / std::sqrt(float(s.head_dim));
  return a;
}

}  // namespace attn

/// Causal attention of `tokens` new queries (positions pos0 .. pos0+tokens-1) against the cache,
/// which already holds their own K/V at those positions. Query t sees [pos0+t-window+1, pos0+t].
///   q:     [tokens, heads, head_dim]
///   k, v:  [rows, kv_stride] (kv head h at + h*head_dim; kv_stride 0 means kv_heads*head_dim):
///          position p at row p (a contiguous cache of one sequence), or at row table.row(0, p)
///          of a paged pool when `table` has blocks; KV quantized: kv_quant.cuh pools, kv_stride
///          in bytes (0: kv_row_bytes)
///   out:   [tokens, heads, head_dim]
/// T is __half or __nv_bfloat16; head_dim 64 or 128. Accumulates in fp32.
template <class T, KvScheme KV = kv::Same>
void attention_prefill(const T* q, const T* k_cache, const T* v_cache, T* out, int64_t tokens, int64_t pos0,
                       const AttentionShape& shape, cudaStream_t stream = 0, int64_t kv_stride = 0,
                       PagedKvTable table = {}) {
  const attn::PrefillArgs<T> a =
      attn::make_prefill_args<T, KV>(q, k_cache, v_cache, out, tokens, pos0, shape, kv_stride, table);
  if (tokens == 0) return;
  // Tile configurations measured on an H100 (bench/cuda_attention.cu, prefill_cfg/*): two m16 tiles
  // per warp (fewer shared-memory reads per mma) once there are enough 128-row blocks to fill the
  // GPU several times over; 64-row blocks (more of them, better balanced) below that.
  const bool large = int64_t(shape.heads) * ((tokens + 127) / 128) > 512;
  switch (shape.head_dim) {
    case 64:
      if (large) return attn::launch_prefill<T, 64, 2, 4, 2, KV>(a, stream);
      return attn::launch_prefill<T, 64, 1, 4, 2, KV>(a, stream);
    case 128:
      if (large) return attn::launch_prefill<T, 128, 2, 4, 2, KV>(a, stream);
      return attn::launch_prefill<T, 128, 1, 4, 2, KV>(a, stream);
    default: fail("attention_prefill: head_dim ", shape.head_dim, " is not supported (supported: 64, 128)");
  }
}

}  // namespace turbine::cuda
