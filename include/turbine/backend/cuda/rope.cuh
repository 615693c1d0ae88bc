#pragma once
// Rotary embedding fused with the optional q/k/v bias (Qwen2) and the KV-cache store: one pass
// reads q, k and v once, rotates q in place, and writes rotated k and biased v into the cache.
// Rotation is "rotate half" (dims i and i + head_dim/2 pair up), angle = pos * inv_freq[i] in fp32,
// as transformers computes it (turbine::rope_inv_freq gives inv_freq, including rope_scaling).
// With a quantized KV scheme (kv::Int8, kv::Int4) the block stages its token's rotated k and v rows
// in shared memory (fp32) and then quantizes each head with one warp (kv_quant.cuh): the caches are
// quantized pools then, passed as T* (see kv_quant.cuh).
#include <cstdint>

#include "check.cuh"
#include "kv_quant.cuh"
#include "paged_kv.cuh"
#include "vec.cuh"

namespace turbine::cuda {

/// Buffers of one rope_qkv call. Rows of q/k/v are `*_stride` elements apart so that the three
/// slices of one fused QKV GEMM output ([tokens, (heads + 2 * kv_heads) * head_dim]) are used in
/// place; separate buffers pass heads * head_dim (q) and kv_heads * head_dim (k, v).
template <class T>
struct RopeQkv {
  T* q = nullptr;        ///< [tokens, heads, head_dim], rows q_stride apart; rotated in place
  const T* k = nullptr;  ///< [tokens, kv_heads, head_dim], rows k_stride apart; read only
  const T* v = nullptr;  ///< [tokens, kv_heads, head_dim], rows v_stride apart; read only
  /// elements between consecutive token rows of q, k and v
  ///@{
  int64_t q_stride = 0, k_stride = 0, v_stride = 0;
  ///@}
  const T* q_bias = nullptr;        ///< [heads * head_dim] or null
  const T* k_bias = nullptr;        ///< [kv_heads * head_dim] or null
  const T* v_bias = nullptr;        ///< [kv_heads * head_dim] or null
  T* k_cache = nullptr;             ///< [cache_positions, kv_heads, head_dim]: rotated k at pos0 + t (quantized KV: a kv_quant.cuh pool)
  T* v_cache = nullptr;             ///< [cache_positions, kv_heads, head_dim]; gets v (+ bias) at pos0 + t
  const float* inv_freq = nullptr;  ///< [head_dim / 2], device
  /// new tokens, query heads, KV heads, elements per head
  ///@{
  int tokens = 0, heads = 0, kv_heads = 0, head_dim = 0;
  ///@}
  int pos0 = 0;                      ///< position of token 0; token t is at pos0 + t
  const int* pos0_device = nullptr;  ///< if set, pos0 is read from here (CUDA graph replays)
  // Batched decode: token t belongs to its own sequence, at positions[t], with its own caches.
  const int* positions = nullptr;    ///< [tokens] device; overrides pos0
  T* const* k_caches = nullptr;      ///< [tokens] device: token t's key cache; overrides k_cache
  T* const* v_caches = nullptr;      ///< [tokens] device: token t's value cache; overrides v_cache
  int cache_positions = 0;           ///< capacity of the caches, checked against pos0 + tokens
  /// Paged caches: position p of token t's sequence (t with `positions`, else 0) is row
  /// table.row(seq, p) of the cache; no table: row p.
  PagedKvTable table;
};

namespace detail {

inline constexpr int kRopeThreads = 128;

// One block per token. Work items: 8 rotation pairs of one q or k head, or 8 elements of one v head.
// A quantized KV scheme stages k and v in `kv_stage` ([2][kv_heads][kHeadDim] fp32, dynamic shared
// memory) and quantizes them after a barrier.
template <HalfElement T, int kHeadDim, class KV = kv::Same>
__global__ static void __launch_bounds__(kRopeThreads) rope_qkv_kernel(const RopeQkv<T> p) {
  constexpr bool kQuant = KV::quantized;
  extern __shared__ float kv_stage[];
  constexpr int kHalf = kHeadDim / 2;
  constexpr int kRotItemsPerHead = kHalf / 8;
  constexpr int kVItemsPerHead = kHeadDim / 8;
  __shared__ float cos_s[kHalf], sin_s[kHalf];
  pdl_launch_dependents();  // a following kernel launched with PDL may start its prologue
  const int t = blockIdx.x;
  const int pos = p.positions ? p.positions[t] : (p.pos0_device ? *p.pos0_device : p.pos0) + t;
  T* const k_cache = p.k_caches ? p.k_caches[t] : p.k_cache;
  T* const v_cache = p.v_caches ? p.v_caches[t] : p.v_cache;
  const int64_t row = p.table.row(p.positions ? t : 0, pos);
  for (int i = threadIdx.x; i < kHalf; i += kRopeThreads) {
    const float angle = static_cast<float>(pos) * p.inv_freq[i];
    sincosf(angle, &sin_s[i], &cos_s[i]);
  }
  __syncthreads();
  const int rot_items = (p.heads + p.kv_heads) * kRotItemsPerHead;
  const int items = rot_items + p.kv_heads * kVItemsPerHead;
  for (int item = threadIdx.x; item < items; item += kRopeThreads) {
    if (item < rot_items) {
      const int h = item / kRotItemsPerHead;
      const int j = (item % kRotItemsPerHead) * 8;
      const bool is_q = h < p.heads;
      const int hk = h - p.heads;
      const T* src = is_q ? p.q + t * p.q_stride + h * kHeadDim : p.k + t * p.k_stride + hk * kHeadDim;
      const T* bias =
          is_q ? (p.q_bias ? p.q_bias + h * kHeadDim : nullptr) : (p.k_bias ? p.k_bias + hk * kHeadDim : nullptr);
      float a[8], b[8];
      vec::load8(src + j, a);
      vec::load8(src + j + kHalf, b);
      if (bias) {
        float ba[8], bb[8];
        vec::load8(bias + j, ba);
        vec::load8(bias + j + kHalf, bb);
#pragma unroll
        for (int e = 0; e < 8; ++e) a[e] += ba[e], b[e] += bb[e];
      }
      float ra[8], rb[8];
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        const float c = cos_s[j + e], s = sin_s[j + e];
        ra[e] = a[e] * c - b[e] * s;
        rb[e] = b[e] * c + a[e] * s;
      }
      if (kQuant && !is_q) {
        float* const dst = kv_stage + hk * kHeadDim;
#pragma unroll
        for (int e = 0; e < 8; ++e) dst[j + e] = ra[e], dst[j + kHalf + e] = rb[e];
        continue;
      }
      T* dst = is_q ? p.q + t * p.q_stride + h * kHeadDim
                    : k_cache + (row * p.kv_heads + hk) * kHeadDim;
      vec::store8(dst + j, ra);
      vec::store8(dst + j + kHalf, rb);
    } else {
      const int it = item - rot_items;
      const int h = it / kVItemsPerHead;
      const int j = (it % kVItemsPerHead) * 8;
      float v[8];
      vec::load8(p.v + t * p.v_stride + h * kHeadDim + j, v);
      if (p.v_bias) {
        float bv[8];
        vec::load8(p.v_bias + h * kHeadDim + j, bv);
#pragma unroll
        for (int e = 0; e < 8; ++e) v[e] += bv[e];
      }
      if constexpr (kQuant) {
        float* const dst = kv_stage + (p.kv_heads + h) * kHeadDim + j;
#pragma unroll
        for (int e = 0; e < 8; ++e) dst[e] = v[e];
      } else {
        vec::store8(v_cache + (row * p.kv_heads + h) * kHeadDim + j, v);
      }
    }
  }
  if constexpr (kQuant) {
    using L = KvQuantLayout<KV, kHeadDim>;
    constexpr int E = kHeadDim / 32;
    __syncthreads();
    const int lane = threadIdx.x & 31;
    const int64_t row_bytes = L::row_bytes(p.kv_heads);
    for (int w = threadIdx.x >> 5; w < 2 * p.kv_heads; w += kRopeThreads / 32) {
      const int h = w % p.kv_heads;
      float x[E];
#pragma unroll
      for (int e = 0; e < E; ++e) x[e] = kv_stage[w * kHeadDim + lane * E + e];
      unsigned char* const dst = reinterpret_cast<unsigned char*>(w < p.kv_heads ? k_cache : v_cache) + row * row_bytes;
      kvq::quantize_head_warp<KV, kHeadDim>(x, lane, dst + h * L::kCodeBytes,
                                            reinterpret_cast<__half2*>(dst + L::params_offset(p.kv_heads, h)));
    }
  }
}

}  // namespace detail

/// Adds the biases (if any), rotates q in place and k into k_cache, and copies v into v_cache, for
/// tokens at positions pos0 .. pos0 + tokens - 1. head_dim: 64 or 128. KV: the caches' scheme (a
/// quantized one quantizes each k and v row as it is written; the caches are then kv_quant.cuh pools).
template <HalfElement T, KvScheme KV = kv::Same>
void rope_qkv(const RopeQkv<T>& p, cudaStream_t stream = nullptr) {
  check(p.tokens >= 0 && p.heads > 0 && p.kv_heads > 0 && p.pos0 >= 0, "rope_qkv: bad sizes (tokens ", p.tokens,
        ", heads ", p.heads, ", kv_heads ", p.kv_heads, ", pos0 ", p.pos0, ")");
  check(static_cast<int64_t>(p.pos0) + p.tokens <= p.cache_positions, "rope_qkv: positions ", p.pos0, "..",
        static_cast<int64_t>(p.pos0) + p.tokens - 1, " do not fit in a KV cache of ", p.cache_positions, " positions");
  check(p.q_stride % 8 == 0 && p.k_stride % 8 == 0 && p.v_stride % 8 == 0,
        "rope_qkv: row strides must be multiples of 8 elements");
  check(aligned16(p.q) && aligned16(p.k) && aligned16(p.v) && aligned16(p.k_cache) && aligned16(p.v_cache) &&
            aligned16(p.q_bias) && aligned16(p.k_bias) && aligned16(p.v_bias),
        "rope_qkv: pointers must be 16-byte aligned");
  check(p.inv_freq != nullptr, "rope_qkv: inv_freq is null");
  if (p.tokens == 0) return;
  const dim3 grid(static_cast<unsigned>(p.tokens));
  size_t smem = 0;
  if constexpr (KV::quantized) {
    smem = size_t(2) * p.kv_heads * p.head_dim * sizeof(float);
    check(smem <= 48 * 1024, "rope_qkv: kv_heads * head_dim = ", int64_t(p.kv_heads) * p.head_dim,
          " is too large for a quantized KV cache (supported: up to 6144)");
    (void)kv_row_bytes<T, KV>(p.kv_heads, p.head_dim);  // checks that head_dim fits the scheme's groups
  }
  switch (p.head_dim) {
    case 64:
      detail::rope_qkv_kernel<T, 64, KV><<<grid, detail::kRopeThreads, smem, stream>>>(p);
      break;
    case 128:
      detail::rope_qkv_kernel<T, 128, KV><<<grid, detail::kRopeThreads, smem, stream>>>(p);
      break;
    default:
      fail("rope_qkv: head_dim ", p.head_dim, " is not supported (supported: 64, 128)");
  }
  TURBINE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace turbine::cuda
