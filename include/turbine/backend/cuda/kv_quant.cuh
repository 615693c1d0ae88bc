#pragma once
// The quantized GPU KV cache (kv::Int8, kv::Int4): storage, the write (quantize) and read
// (dequantize) helpers that rope.cuh and both attention kernels fuse in. quant/kv_quant.hpp is the
// CPU reference.
//
// A pool row (one position of one layer's keys, or values) is
//   codes   [kv_heads][head_dim * bits / 8]  bytes: int8 one a byte; int4 eight to a 32-bit word,
//                                            channel 8w + c at nibble (c / 2) + 4 * (c % 2) of
//                                            word w (so that masking 0x000f000f of the word shifted
//                                            by 4j gives channels 2j, 2j + 1 as the halves of a
//                                            half2: the f16 dequantization is bit tricks and hfma2)
//   params  [kv_heads][groups] half2         (scale, min) of each group of kv_group_size channels
//   padding to a multiple of 16 bytes
// so that each head's codes are 16-byte chunks (cp.async) and a row is one copy-on-write unit.
// x ~ min + q * scale. Scale and min are computed in fp32 exactly as kv_round_trip_head does,
// rounded to fp16 (round to nearest), and the codes are computed against the rounded values
// (q = clamp(nearbyint((x - min_h) / scale_h), 0, levels)), so that the dequantized value
// min_h + q * scale_h is the level nearest x that the stored parameters can express. A group whose
// range is 0 (or not finite, or whose scale rounds to 0 in fp16) stores scale 0, min = its first
// minimum and codes 0. Differences from the fp32 reference: fp16 rounding of scale and min (a code
// may differ by one where x sits half-way between levels) and of the constant value.
//
// The attention kernels receive a pool as a `const T*` like an unquantized pool (one pointer type
// for the cache pointer arrays); with a quantized scheme they read it as bytes, rows
// kv_row_bytes() apart.
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "../../quant/kv_quant.hpp"
#include "check.cuh"
#include "device_buffer.cuh"
#include "paged_kv.cuh"
#include "types.cuh"
#include "vec.cuh"

namespace turbine::cuda {

/// Compile-time layout of one head of a quantized pool row for head_dim HD.
template <KvScheme K, int HD>
struct KvQuantLayout {
  static constexpr int kBits = K::bits;                                   ///< bits per code
  static constexpr int kLevels = (1 << kBits) - 1;                        ///< largest code
  static constexpr int kGroup = int(quant::kv_group_size<K>(HD));         ///< channels per (scale, min)
  static constexpr int kGroups = HD / kGroup;                             ///< (scale, min) pairs per head
  static constexpr int kCodeBytes = HD * kBits / 8;                       ///< code bytes per head
  static constexpr int kChunks = kCodeBytes / 16;                         ///< 16-byte code chunks per head
  static_assert(K::quantized, "KvQuantLayout: a quantized KV scheme");
  static_assert(kBits == 8 || kBits == 4, "KvQuantLayout: 8- or 4-bit codes");
  static_assert(HD % kGroup == 0 && kGroup % 8 == 0,
                "the KV scheme's group must be a multiple of 8 that divides head_dim (or 0: the whole head)");
  static_assert(kCodeBytes % 16 == 0, "KvQuantLayout: a head's codes must be whole 16-byte chunks");
  /// Bytes of one pool row (see the top of this file).
  __host__ __device__ static constexpr int64_t row_bytes(int64_t kv_heads) {
    return (kv_heads * (kCodeBytes + kGroups * 4) + 15) / 16 * 16;
  }
  /// Byte offset of head h's params within a row.
  __host__ __device__ static constexpr int64_t params_offset(int64_t kv_heads, int64_t h) {
    return kv_heads * kCodeBytes + h * kGroups * 4;
  }
};

/// Bytes of one pool row of scheme K (run-time head_dim); kv::Same: kv_heads * head_dim elements of T.
template <class T, KvScheme K>
int64_t kv_row_bytes(int64_t kv_heads, int64_t head_dim) {
  if constexpr (!K::quantized) {
    return kv_heads * head_dim * int64_t(sizeof(T));
  } else {
    const int64_t g = quant::kv_group_size<K>(head_dim);
    check(head_dim % g == 0 && g % 8 == 0 && (head_dim * K::bits / 8) % 16 == 0, "KV cache ", K::name,
          ": head_dim ", head_dim, " with groups of ", g, " channels is not supported on the GPU (the group must be a "
          "multiple of 8 dividing head_dim, and a head's codes whole 16-byte chunks)");
    return (kv_heads * (head_dim * K::bits / 8 + (head_dim / g) * 4) + 15) / 16 * 16;
  }
}

/// The GPU storage of a KV block arena with a quantized scheme K: DeviceKvStorage's layout
/// [layer][k, v][blocks * block_size, row] with rows of kv_row_bytes() bytes (codes and params of a
/// position side by side, so that copy_rows copies both).
template <class T, KvScheme K>
class QuantKvStorage {
 public:
  static constexpr bool kGrows = false;  ///< reserved at once: the kernels bake the pools' addresses

  /// Room for `max_blocks` blocks of `block_size` positions of model `c`.
  QuantKvStorage(const ModelConfig& c, int64_t block_size, int64_t max_blocks)
      : layers_(c.num_layers), row_bytes_(kv_row_bytes<T, K>(c.num_kv_heads, c.head_dim)), block_size_(block_size),
        blocks_(max_blocks), shift_(::turbine::cuda::block_shift(block_size)),
        data_(static_cast<size_t>(2 * c.num_layers * max_blocks * block_size * row_bytes_), "KV cache") {}

  int64_t blocks() const { return blocks_; }  ///< blocks held
  /// Bytes of one block (keys and values of every layer).
  size_t block_bytes() const { return static_cast<size_t>(2 * layers_ * block_size_ * row_bytes_); }
  int block_shift() const { return shift_; }  ///< log2 of the block size
  int64_t row_bytes() const { return row_bytes_; }  ///< bytes of one pool row
  void grow() { fail("the GPU KV cache cannot grow"); }  ///< never called (kGrows is false)
  void discard(int32_t) {}  ///< device memory stays reserved
  /// Copies the first `rows` positions (codes and params) of every layer of block `from` into `to`.
  void copy_rows(int32_t from, int32_t to, int64_t rows) {
    for (int64_t l = 0; l < layers_; ++l)
      for (unsigned char* pool : {pool_bytes(2 * l), pool_bytes(2 * l + 1)})
        TURBINE_CUDA_CHECK(cudaMemcpy(pool + int64_t(to) * block_size_ * row_bytes_, pool + int64_t(from) * block_size_ * row_bytes_,
                                      static_cast<size_t>(rows * row_bytes_), cudaMemcpyDeviceToDevice));
    TURBINE_CUDA_CHECK(cudaStreamSynchronize(nullptr));  // see DeviceKvStorage::copy_rows
  }
  /// Layer `layer`'s key pool: [blocks * block_size, row_bytes] bytes, typed T* for the kernels' arguments.
  T* keys(int64_t layer) { return reinterpret_cast<T*>(pool_bytes(2 * layer)); }
  /// Layer `layer`'s value pool, as keys().
  T* values(int64_t layer) { return reinterpret_cast<T*>(pool_bytes(2 * layer + 1)); }

 private:
  unsigned char* pool_bytes(int64_t i) { return data_.data() + i * blocks_ * block_size_ * row_bytes_; }
  int64_t layers_, row_bytes_, block_size_, blocks_;
  int shift_;
  DeviceBuffer<unsigned char> data_;
};

namespace detail {
template <class T, KvScheme K>
struct KvStorageFor {
  using type = QuantKvStorage<T, K>;
};
template <class T>
struct KvStorageFor<T, kv::Same> {
  using type = DeviceKvStorage<T>;
};
}  // namespace detail

/// The GPU KV storage of element type T and scheme K (kv::Same: DeviceKvStorage<T>).
template <class T, KvScheme K>
using KvStorageOf = typename detail::KvStorageFor<T, K>::type;

namespace kvq {

// One warp quantizes one head: lane l holds channels [l * E, l * E + E), E = HD / 32, so a group of
// G channels is G / E neighbouring lanes (a power of two: G and E are). codes: the head's codes in
// its row; params: the head's (scale, min) pairs.
template <KvScheme K, int HD>
__device__ __forceinline__ void quantize_head_warp(const float (&x)[HD / 32], int lane, unsigned char* codes,
                                                   __half2* params) {
  using L = KvQuantLayout<K, HD>;
  constexpr int E = HD / 32, kLanes = L::kGroup / E;
  static_assert(L::kGroup % E == 0 && (kLanes & (kLanes - 1)) == 0);
  float lo = x[0], hi = x[0];
#pragma unroll
  for (int e = 1; e < E; ++e) lo = fminf(lo, x[e]), hi = fmaxf(hi, x[e]);
#pragma unroll
  for (int o = 1; o < kLanes; o <<= 1) {
    lo = fminf(lo, __shfl_xor_sync(0xffffffffu, lo, o));
    hi = fmaxf(hi, __shfl_xor_sync(0xffffffffu, hi, o));
  }
  const float scale = (hi - lo) / float(L::kLevels);
  __half sh = __float2half_rn(scale);
  const __half mh = __float2half_rn(lo);
  const float sf = __half2float(sh), mf = __half2float(mh);
  const bool ok = scale > 0.f && isfinite(scale) && sf > 0.f && isfinite(sf);
  if (!ok) sh = __float2half_rn(0.f);
  const float inv = ok ? 1.f / sf : 0.f;
  uint32_t q[E];
#pragma unroll
  for (int e = 0; e < E; ++e)
    q[e] = ok ? uint32_t(fminf(fmaxf(nearbyintf((x[e] - mf) * inv), 0.f), float(L::kLevels))) : 0u;
  if constexpr (L::kBits == 8) {
    if constexpr (E == 4) {
      reinterpret_cast<uint32_t*>(codes)[lane] = q[0] | q[1] << 8 | q[2] << 16 | q[3] << 24;
    } else {
      static_assert(E == 2);
      reinterpret_cast<uint16_t*>(codes)[lane] = uint16_t(q[0] | q[1] << 8);
    }
  } else {
    // The 8 / E lanes of a 32-bit word OR their nibbles together; the first one stores the word.
    constexpr int W = 8 / E;
    uint32_t word = 0;
#pragma unroll
    for (int e = 0; e < E; ++e) {
      const int c = (lane * E + e) % 8;
      word |= q[e] << (4 * ((c >> 1) + 4 * (c & 1)));
    }
#pragma unroll
    for (int o = 1; o < W; o <<= 1) word |= __shfl_xor_sync(0xffffffffu, word, o);
    if (lane % W == 0) reinterpret_cast<uint32_t*>(codes)[lane / W] = word;
  }
  if (lane % kLanes == 0) params[lane / kLanes] = __halves2half2(sh, mh);
}

// 4-byte global -> shared copy (the params of a head can be one half2); zero-filled when !pred.
__device__ __forceinline__ void cp_async4(uint32_t dst, const void* src, bool pred) {
  const int n = pred ? 4 : 0;
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(src), "r"(n));
}

// Dequantizes channels [c * 8, c * 8 + 8) of one staged head row: codes (the head's codes) and
// params (its (scale, min) pairs), both in shared memory; returns them packed as 8 T.
// f16: the codes become half2 (1024 + q) by byte permutes / masks (0x6400 is 1024, whose ulp is 1),
// minus 1024 exactly, then one hfma2 with (scale, min): 3 instructions per 2 channels. bf16 (whose 8
// bits of precision cannot hold 1024 + q) goes through fp32.
template <class T, KvScheme K, int HD>
__device__ __forceinline__ uint4 dequant8(const unsigned char* codes, const __half2* params, int c) {
  using L = KvQuantLayout<K, HD>;
  if constexpr (std::is_same_v<T, __half>) {
    const __half2 sm = params[(c * 8) / L::kGroup];
    const __half2 s2 = __low2half2(sm), m2 = __high2half2(sm), k1024 = __float2half2_rn(1024.f);
    uint32_t h[4];
    if constexpr (L::kBits == 8) {
      const uint2 u = *reinterpret_cast<const uint2*>(codes + c * 8);
      h[0] = __byte_perm(u.x, 0x64646464u, 0x4140);
      h[1] = __byte_perm(u.x, 0x64646464u, 0x4342);
      h[2] = __byte_perm(u.y, 0x64646464u, 0x4140);
      h[3] = __byte_perm(u.y, 0x64646464u, 0x4342);
    } else {
      const uint32_t u = *reinterpret_cast<const uint32_t*>(codes + c * 4);
#pragma unroll
      for (int j = 0; j < 4; ++j) h[j] = ((u >> (4 * j)) & 0x000f000fu) | 0x64006400u;
    }
    uint4 out;
    uint32_t* const o = reinterpret_cast<uint32_t*>(&out);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const __half2 x = __hfma2(__hsub2(*reinterpret_cast<const __half2*>(&h[j]), k1024), s2, m2);
      o[j] = *reinterpret_cast<const uint32_t*>(&x);
    }
    return out;
  } else {
    const float2 sm = __half22float2(params[(c * 8) / L::kGroup]);
    float v[8];
    if constexpr (L::kBits == 8) {
      const uint2 u = *reinterpret_cast<const uint2*>(codes + c * 8);
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        v[e] = fmaf(float((u.x >> (8 * e)) & 0xffu), sm.x, sm.y);
        v[e + 4] = fmaf(float((u.y >> (8 * e)) & 0xffu), sm.x, sm.y);
      }
    } else {
      const uint32_t u = *reinterpret_cast<const uint32_t*>(codes + c * 4);
#pragma unroll
      for (int e = 0; e < 8; ++e) v[e] = fmaf(float((u >> (4 * ((e >> 1) + 4 * (e & 1)))) & 0xfu), sm.x, sm.y);
    }
    return vec::pack8<T>(v);
  }
}

/// Shared-memory staging of the codes and params of `kBN` cache rows of one KV head, for K and V.
template <KvScheme K, int HD, int kBN>
struct KvStage {
  using L = KvQuantLayout<K, HD>;  ///< the row layout of scheme K at head_dim HD
  /// bytes of one stage: codes [2][kBN][kCodeBytes], then params [2][kBN][kGroups] half2
  static constexpr size_t kBytes = size_t(2) * kBN * (L::kCodeBytes + L::kGroups * 4);
  static constexpr size_t kParamsAt = size_t(2) * kBN * L::kCodeBytes;  ///< offset of the params

  /// Issues the copies of row r (cache row `row`, head `head` of kv_heads) for `pred`; thread `i` of
  /// n takes chunk i, i + n, ... of the tile's rows listed by row_of(r) -> (row, pred).
  template <int kThreads, class RowOf>
  __device__ __forceinline__ static void load(unsigned char* stage, const unsigned char* kpool,
                                              const unsigned char* vpool, int64_t row_bytes, int kv_heads, int head,
                                              int tid, RowOf&& row_of) {
    for (int i = tid; i < kBN * L::kChunks; i += kThreads) {
      const int r = i / L::kChunks, c = i % L::kChunks;
      bool pred;
      const int64_t row = row_of(r, pred);
      if (row < 0) continue;  // this part skips the row
      const int64_t off = row * row_bytes + int64_t(head) * L::kCodeBytes + c * 16;
      unsigned char* const dst = stage + size_t(r) * L::kCodeBytes + c * 16;
      attn_cp_async16(dst, kpool + off, pred);
      attn_cp_async16(dst + size_t(kBN) * L::kCodeBytes, vpool + off, pred);
    }
    for (int i = tid; i < kBN * L::kGroups; i += kThreads) {
      const int r = i / L::kGroups, j = i % L::kGroups;
      bool pred;
      const int64_t row = row_of(r, pred);
      if (row < 0) continue;
      const int64_t off = row * row_bytes + L::params_offset(kv_heads, head) + j * 4;
      unsigned char* const dst = stage + kParamsAt + (size_t(r) * L::kGroups + j) * 4;
      cp_async4(static_cast<uint32_t>(__cvta_generic_to_shared(dst)), kpool + off, pred);
      cp_async4(static_cast<uint32_t>(__cvta_generic_to_shared(dst + size_t(kBN) * L::kGroups * 4)), vpool + off, pred);
    }
  }

  /// Dequantizes a staged tile into the T tiles dk and dv ([kBN][HD], element (r, 8c..8c+7) at
  /// dst_of(tile, r, c)).
  template <class T, int kThreads, class DstOf>
  __device__ __forceinline__ static void dequant(const unsigned char* stage, int tid, DstOf&& dst_of) {
    constexpr int kC = HD / 8;
    const __half2* const params = reinterpret_cast<const __half2*>(stage + kParamsAt);
#pragma unroll
    for (int kv = 0; kv < 2; ++kv)
#pragma unroll 2
      for (int i = tid; i < kBN * kC; i += kThreads) {
        const int r = i / kC, c = i % kC;
        const size_t rr = size_t(kv) * kBN + r;
        *reinterpret_cast<uint4*>(dst_of(kv, r, c)) =
            dequant8<T, K, HD>(stage + rr * L::kCodeBytes, params + rr * L::kGroups, c);
      }
  }

  /// A 16-byte cp.async into shared memory that zero-fills when `pred` is false.
  __device__ __forceinline__ static void attn_cp_async16(unsigned char* dst, const void* src, bool pred) {
    const int n = pred ? 16 : 0;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(static_cast<uint32_t>(__cvta_generic_to_shared(dst))),
                 "l"(src), "r"(n));
  }
};

/// Bytes of one pipeline stage of codes and params of kBN rows (0 for an unquantized scheme).
template <class K, int HD, int kBN>
__host__ __device__ constexpr size_t stage_bytes() {
  if constexpr (K::quantized) return KvStage<K, HD, kBN>::kBytes;
  else return 0;
}

}  // namespace kvq

}  // namespace turbine::cuda
