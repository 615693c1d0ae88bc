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
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "../../quant/kv_quant.hpp"
#include "check.cuh"
#include "cp_async.cuh"
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
      cp_async16(smem_u32(dst), kpool + off, pred);
      cp_async16(smem_u32(dst + size_t(kBN) * L::kCodeBytes), vpool + off, pred);
    }
    load_params<kThreads>(stage + kParamsAt, stage + kParamsAt + size_t(kBN) * L::kGroups * 4, kpool, vpool, row_bytes,
                          kv_heads, head, tid, row_of);
  }

  /// The (scale, min) pairs of the tile's rows, K's to k_dst and V's to v_dst (each [kBN][groups]
  /// of 4 bytes); row_of as for load().
  template <int kThreads, class RowOf>
  __device__ __forceinline__ static void load_params(unsigned char* k_dst, unsigned char* v_dst, const unsigned char* kpool,
                                                     const unsigned char* vpool, int64_t row_bytes, int kv_heads, int head,
                                                     int tid, RowOf&& row_of) {
    for (int i = tid; i < kBN * L::kGroups; i += kThreads) {
      const int r = i / L::kGroups, j = i % L::kGroups;
      bool pred;
      const int64_t row = row_of(r, pred);
      if (row < 0) continue;
      const int64_t off = row * row_bytes + L::params_offset(kv_heads, head) + j * 4;
      const size_t at = (size_t(r) * L::kGroups + j) * 4;
      cp_async4(smem_u32(k_dst + at), kpool + off, pred);
      cp_async4(smem_u32(v_dst + at), vpool + off, pred);
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
};

// ---- Register dequantization for the decode kernel (attention_decode.cuh) ----
//
// The decode kernel feeds the codes to mma.sync m16n8k16 as B operands, dequantized in registers
// (no fp16 tile in shared memory, no second barrier). Each lane reads the codes its fragments need
// with one to four vector loads per cache row, so the tile is staged in a "fragment order":
//  - K (B of S = Q K^T, column = position): lane (gid, tig) of row n holds the contiguous channels
//    [tig * HD/4, (tig + 1) * HD/4): a permutation of the k dimension (Q's A fragments are loaded in
//    the same order, see load_q_permuted) that makes k-slots 2tig, 2tig+1 / 2tig+8, 2tig+9 of step
//    kk the channels tig * HD/4 + 4kk + {0, 1} / {2, 3};
//  - V (B of O = P V, k = position, column = channel): lane (gid, tig) holds the channels
//    [gid * HD/8, (gid + 1) * HD/8) of positions 2tig, 2tig+1, 2tig+8, 2tig+9 of each 16: column n
//    of n-block dp is channel n * HD/8 + dp (the kernel's output permutation).
// A lane's channels of one position lie in one (scale, min) group (HD/8 and HD/4 divide the
// groups of kv::Int8 and kv::Int4), so a lane needs one parameter pair per position.
// Shared-memory bank conflicts are avoided by XOR-swizzling the 16-byte chunks of a row (see
// chunk()) and by letting the lanes with tig >= 2 read their V position pair in the other order.

__device__ __forceinline__ __half2 u2h2(uint32_t u) { return *reinterpret_cast<const __half2*>(&u); }
__device__ __forceinline__ uint32_t h22u(__half2 h) { return *reinterpret_cast<const uint32_t*>(&h); }

// Two 4-bit codes (the low nibbles of bytes 0 and 2 of x) as the exact half2 integers: 0x6400 | q
// is 1024 + q.
__device__ __forceinline__ __half2 nib_lo_f16(uint32_t x) {
  return __hsub2(u2h2((x & 0x000f000fu) | 0x64006400u), __float2half2_rn(1024.f));
}
// The high nibbles of bytes 0 and 2: 0x6400 | 16q is 1024 + 16q, times 1/16 minus 64 is q (exact).
__device__ __forceinline__ __half2 nib_hi_f16(uint32_t x) {
  return __hfma2(u2h2((x & 0x00f000f0u) | 0x64006400u), __float2half2_rn(0.0625f), __float2half2_rn(-64.f));
}
// Bytes 0 and 1 (sel 0x4140) or 2 and 3 (sel 0x4342) of x as the half2 1024 + q (exact).
__device__ __forceinline__ uint32_t byte_f16_1024(uint32_t x, uint32_t sel) { return __byte_perm(x, 0x64646464u, sel); }

// Code c of a 32-bit word of scheme K (int4: channel c at nibble c/2 + 4(c%2)); exact as a float.
template <int kBits>
__device__ __forceinline__ float code_f32(uint32_t w, int c) {
  const uint32_t q = kBits == 8 ? (w >> (8 * c)) & 0xffu : (w >> (4 * ((c >> 1) + 4 * (c & 1)))) & 0xfu;
  return __uint_as_float(0x4b000000u | q) - 8388608.f;  // 2^23 + q, exact
}

/// One pipeline stage of kBN quantized cache rows of one KV head, K and V, in fragment order.
template <KvScheme K, int HD, int kBN>
struct FragTile {
  using L = KvQuantLayout<K, HD>;  ///< the pool's row layout
  static constexpr int kCB = L::kCodeBytes;  ///< code bytes of a row
  static constexpr int kPer = 32 / L::kBits;  ///< channels per 32-bit code word
  static constexpr int kKWords = HD / 4 / kPer;  ///< code words of a row a lane reads for K
  static constexpr int kVWords = HD / 8 / kPer;  ///< code words of a row a lane reads for V
  /// byte offsets in a stage: K codes [kBN][kCB] at 0, V codes, K params [kBN][groups] half2, V params
  ///@{
  static constexpr size_t kVCodes = size_t(kBN) * kCB, kKParams = 2 * kVCodes,
                          kVParams = kKParams + size_t(kBN) * L::kGroups * 4, kBytes = kVParams + size_t(kBN) * L::kGroups * 4;
  ///@}
  /// f16 int8 keys skip the dequantization: the mma takes 1024 + q and the kernel applies scale and
  /// min to the scores (k_fold); elsewhere the lanes dequantize to T.
  template <class T>
  static constexpr bool kFoldK = std::is_same_v<T, __half> && L::kBits == 8;
  static_assert(kCB == 32 || kCB == 64 || kCB == 128, "FragTile: 32, 64 or 128 code bytes per head");
  static_assert((HD / 8) % kPer == 0 && L::kGroup % (HD / 4) == 0, "FragTile: a lane's channels in one group");

  /// Where 16-byte chunk c of row r lives. 128-byte rows: c ^ (r & 7) spreads the 8 rows of a K read
  /// (rows gid) and of a V read (rows 2tig + e) over the banks; 64-byte rows: rows 2k and 2k + 1 fill
  /// the two bank halves, and c ^ (r & 2) separates the two rows of a V read that share a half;
  /// 32-byte rows: four consecutive rows already cover the banks.
  __device__ __forceinline__ static int chunk(int r, int c) {
    if constexpr (kCB == 128) return c ^ (r & 7);
    else if constexpr (kCB == 64) return c ^ (r & 2);
    else return c;
  }

  /// Issues the cp.async copies of the tile's rows, as KvStage::load (row_of(r, pred) -> pool row,
  /// or < 0 to skip the row); codes land swizzled (chunk()), rows past the data zero-filled.
  /// Each warp takes kBN / warps consecutive rows: lane l looks up row l of them (a block-table
  /// read whose latency every copy of the row waits on) and the copies get the rows by shuffles,
  /// so a row is looked up once, and consecutive lanes copy consecutive 16-byte chunks of a row
  /// (whole rows per instruction, as DRAM likes them). The (scale, min) pairs go as 16-byte
  /// copies where a head's pairs are whole 16 bytes (int4 at head_dim 128), else 4 bytes a pair.
  /// Measured on an H100 (2026-12-05, PERFORMANCE.md) at Llama-3-8B's heads, batch 64 x 8192:
  /// int8 447 / 495 / 442 us and int4 361 / 339 / 319 us for the loop that looked a row up once per
  /// chunk and per pair, for two threads a row (each a strided half of it: one lookup, but 32-byte
  /// pieces of 16 rows per warp instruction), and for this form.
  template <int kThreads, class RowOf>
  __device__ __forceinline__ static void load(unsigned char* stage, const unsigned char* kpool,
                                              const unsigned char* vpool, int64_t row_bytes, int kv_heads, int head,
                                              int tid, RowOf&& row_of) {
    constexpr int kWarps = kThreads / 32, kRows = kBN / kWarps;  // rows per warp
    constexpr int kChunks = kCB / 16, kParamBytes = L::kGroups * 4;
    static_assert(kThreads % 32 == 0 && kBN % kWarps == 0 && kRows <= 32, "FragTile::load: rows per warp");
    using Stage = KvStage<K, HD, kBN>;
    const int lane = tid & 31, r0 = (tid >> 5) * kRows;
    bool my_pred;
    const int64_t my_row = row_of(r0 + lane % kRows, my_pred);  // lanes past kRows repeat a lookup
    const int64_t codes = int64_t(head) * kCB, params = L::params_offset(kv_heads, head);
#pragma unroll
    for (int i = lane; i < kRows * kChunks; i += 32) {  // chunk c of row rr: lane i
      const int rr = i / kChunks, c = i % kChunks;
      const int64_t row = __shfl_sync(0xffffffffu, my_row, rr);
      const bool pred = __shfl_sync(0xffffffffu, int(my_pred), rr) != 0;
      if (row < 0) continue;
      const int r = r0 + rr;
      unsigned char* const dst = stage + size_t(r) * kCB + chunk(r, c) * 16;
      const int64_t off = row * row_bytes + codes + c * 16;
      cp_async16(smem_u32(dst), kpool + off, pred);
      cp_async16(smem_u32(dst + kVCodes), vpool + off, pred);
    }
    constexpr int kParamCopies = kParamBytes % 16 == 0 ? kParamBytes / 16 : L::kGroups;  // per row, K and V each
    constexpr int kCopyBytes = kParamBytes % 16 == 0 ? 16 : 4;
    static_assert((kRows * kChunks) % 32 == 0 && (kRows * 2 * kParamCopies) % 32 == 0,
                  "FragTile::load: every lane takes part in every shuffle");
#pragma unroll
    for (int i = lane; i < kRows * 2 * kParamCopies; i += 32) {  // (row, K or V, copy)
      const int rr = i / (2 * kParamCopies), kv = (i / kParamCopies) % 2, j = i % kParamCopies;
      const int64_t row = __shfl_sync(0xffffffffu, my_row, rr);
      const bool pred = __shfl_sync(0xffffffffu, int(my_pred), rr) != 0;
      if (row < 0) continue;
      const size_t at = (kv ? kVParams : kKParams) + size_t(r0 + rr) * kParamBytes + j * kCopyBytes;
      const unsigned char* const src = (kv ? vpool : kpool) + row * row_bytes + params + j * kCopyBytes;
      if constexpr (kCopyBytes == 16) cp_async16(smem_u32(stage + at), src, pred);
      else cp_async4(smem_u32(stage + at), src, pred);
    }
  }

  /// N code words of row r from byte `at` of the row (a multiple of 4N, within one chunk for N <= 4).
  template <int N>
  __device__ __forceinline__ static void read(const unsigned char* codes, int r, int at, uint32_t (&w)[N]) {
    const unsigned char* const row = codes + r * kCB;
    if constexpr (N >= 4) {
#pragma unroll
      for (int i = 0; i < N / 4; ++i) {
        const uint4 u = *reinterpret_cast<const uint4*>(row + chunk(r, at / 16 + i) * 16);
        w[4 * i] = u.x, w[4 * i + 1] = u.y, w[4 * i + 2] = u.z, w[4 * i + 3] = u.w;
      }
    } else if constexpr (N == 2) {
      const uint2 u = *reinterpret_cast<const uint2*>(row + chunk(r, at / 16) * 16 + at % 16);
      w[0] = u.x, w[1] = u.y;
    } else {
      w[0] = *reinterpret_cast<const uint32_t*>(row + chunk(r, at / 16) * 16 + at % 16);
    }
  }
  /// The (scale, min) of group j of row r, as a half2's bits.
  __device__ __forceinline__ static uint32_t param(const unsigned char* params, int r, int j) {
    return *reinterpret_cast<const uint32_t*>(params + (size_t(r) * L::kGroups + j) * 4);
  }

  /// The B fragments of key row r for lane tig, all HD/16 k-steps: values of T, or with kFoldK<T>
  /// the half2 1024 + q.
  template <class T>
  __device__ __forceinline__ static void k_frags(const unsigned char* stage, int r, int tig, uint32_t (&b)[HD / 16][2]) {
    uint32_t w[kKWords];
    read(stage, r, tig * kKWords * 4, w);
    if constexpr (kFoldK<T>) {
#pragma unroll
      for (int i = 0; i < kKWords; ++i) b[i][0] = byte_f16_1024(w[i], 0x4140), b[i][1] = byte_f16_1024(w[i], 0x4342);
    } else if constexpr (std::is_same_v<T, __half>) {
      static_assert(L::kBits == 4);
      const uint32_t p = param(stage + kKParams, r, tig * (HD / 4) / L::kGroup);
      const __half2 s2 = __low2half2(u2h2(p)), m2 = __high2half2(u2h2(p));
#pragma unroll
      for (int i = 0; i < kKWords; ++i) {
        const uint32_t hi = w[i] >> 8;
        b[2 * i][0] = h22u(__hfma2(nib_lo_f16(w[i]), s2, m2));      // channels 8i + 0, 1
        b[2 * i][1] = h22u(__hfma2(nib_hi_f16(w[i]), s2, m2));      // 8i + 2, 3
        b[2 * i + 1][0] = h22u(__hfma2(nib_lo_f16(hi), s2, m2));    // 8i + 4, 5
        b[2 * i + 1][1] = h22u(__hfma2(nib_hi_f16(hi), s2, m2));    // 8i + 6, 7
      }
    } else {
      // bf16 cannot hold 1024 + q: fp32 dequantization, rounded once (as the CPU reference's cache).
      const float2 sm = __half22float2(u2h2(param(stage + kKParams, r, tig * (HD / 4) / L::kGroup)));
#pragma unroll
      for (int i = 0; i < kKWords; ++i)
#pragma unroll
        for (int t = 0; t < kPer / 4; ++t) {
          float v[4];
#pragma unroll
          for (int e = 0; e < 4; ++e) v[e] = fmaf(code_f32<L::kBits>(w[i], 4 * t + e), sm.x, sm.y);
          const __nv_bfloat162 lo = __floats2bfloat162_rn(v[0], v[1]), hi = __floats2bfloat162_rn(v[2], v[3]);
          b[i * (kPer / 4) + t][0] = *reinterpret_cast<const uint32_t*>(&lo);
          b[i * (kPer / 4) + t][1] = *reinterpret_cast<const uint32_t*>(&hi);
        }
    }
  }

  /// With kFoldK: turns the raw sums of one n8 block (rows r, r + 1 = its columns 2tig, 2tig + 1)
  /// into scores: s = scale * raw + (min - 1024 scale) * qsum[row] (qsum: the row's Q summed).
  __device__ __forceinline__ static void k_fold(const unsigned char* stage, int r, const float (&qsum)[2], float (&s)[4]) {
    static_assert(L::kGroups == 1);
    const uint2 p = *reinterpret_cast<const uint2*>(stage + kKParams + size_t(r) * 4);
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const float2 sm = __half22float2(u2h2(e ? p.y : p.x));
      const float c = fmaf(-1024.f, sm.x, sm.y);
      s[e] = fmaf(s[e], sm.x, c * qsum[0]);
      s[2 + e] = fmaf(s[2 + e], sm.x, c * qsum[1]);
    }
  }

  /// The B fragments of value rows r16 + {2tig, 2tig+1} (b[.][0]) and r16 + {2tig+8, 2tig+9}
  /// (b[.][1]) for lane (gid, tig), all HD/8 n-blocks, as values of T.
  template <class T>
  __device__ __forceinline__ static void v_frags(const unsigned char* stage, int r16, int gid, int tig, uint32_t (&b)[HD / 8][2]) {
    // Lanes with tig >= 2 read the pair's second row first (bank spread, see chunk()); the byte
    // selectors then take the other source: flip.
    const int sw = (tig >> 1) & 1;
    const uint32_t flip = sw ? 0x4444u : 0u;
    const int at = gid * kVWords * 4, grp = gid * (HD / 8) / L::kGroup;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r0 = r16 + 8 * h + 2 * tig + sw, r1 = r16 + 8 * h + 2 * tig + (sw ^ 1);
      uint32_t d0[kVWords], d1[kVWords];
      read(stage + kVCodes, r0, at, d0);
      read(stage + kVCodes, r1, at, d1);
      const uint32_t p0 = param(stage + kVParams, r0, grp), p1 = param(stage + kVParams, r1, grp);
      if constexpr (std::is_same_v<T, __half>) {
        // (scale, min) of the pair's two positions as half2 {first, second}.
        const __half2 s01 = u2h2(__byte_perm(p0, p1, 0x5410u ^ flip)), m01 = u2h2(__byte_perm(p0, p1, 0x7632u ^ flip));
        const __half2 k1024 = __float2half2_rn(1024.f);
#pragma unroll
        for (int w = 0; w < kVWords; ++w) {
          if constexpr (L::kBits == 8) {
            // Bytes j of both positions side by side, then 0x64 above each: 1024 + q.
            const uint32_t lo = __byte_perm(d0[w], d1[w], 0x5140u ^ flip), hi = __byte_perm(d0[w], d1[w], 0x7362u ^ flip);
            const uint32_t x[4] = {byte_f16_1024(lo, 0x4140), byte_f16_1024(lo, 0x4342), byte_f16_1024(hi, 0x4140),
                                   byte_f16_1024(hi, 0x4342)};
#pragma unroll
            for (int j = 0; j < 4; ++j) b[4 * w + j][h] = h22u(__hfma2(__hsub2(u2h2(x[j]), k1024), s01, m01));
          } else {
            // Byte t of both words in bytes 0 and 2: its low nibble is channel c(2t), its high c(2t+1).
#pragma unroll
            for (int t = 0; t < 4; ++t) {
              const uint32_t x = __byte_perm(d0[w], d1[w], (uint32_t(t) | uint32_t(4 + t) << 8) ^ flip);
              constexpr auto ch = [](int n) { return 2 * (n % 4) + n / 4; };  // channel at nibble n
              b[8 * w + ch(2 * t)][h] = h22u(__hfma2(nib_lo_f16(x), s01, m01));
              b[8 * w + ch(2 * t + 1)][h] = h22u(__hfma2(nib_hi_f16(x), s01, m01));
            }
          }
        }
      } else {
        const float2 f0 = __half22float2(u2h2(sw ? p1 : p0)), f1 = __half22float2(u2h2(sw ? p0 : p1));
#pragma unroll
        for (int w = 0; w < kVWords; ++w) {
          const uint32_t a0 = sw ? d1[w] : d0[w], a1 = sw ? d0[w] : d1[w];
#pragma unroll
          for (int c = 0; c < kPer; ++c) {
            const __nv_bfloat162 v = __floats2bfloat162_rn(fmaf(code_f32<L::kBits>(a0, c), f0.x, f0.y),
                                                           fmaf(code_f32<L::kBits>(a1, c), f1.x, f1.y));
            b[kPer * w + c][h] = *reinterpret_cast<const uint32_t*>(&v);
          }
        }
      }
    }
  }
};

/// Bytes of one FragTile stage of kBN rows (0 for an unquantized scheme).
template <class K, int HD, int kBN>
__host__ __device__ constexpr size_t frag_stage_bytes() {
  if constexpr (K::quantized) return FragTile<K, HD, kBN>::kBytes;
  else return 0;
}

/// Bytes of one pipeline stage of codes and params of kBN rows (0 for an unquantized scheme).
template <class K, int HD, int kBN>
__host__ __device__ constexpr size_t stage_bytes() {
  if constexpr (K::quantized) return KvStage<K, HD, kBN>::kBytes;
  else return 0;
}

}  // namespace kvq

}  // namespace turbine::cuda
