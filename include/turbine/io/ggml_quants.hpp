#pragma once
// GGML tensor types: the mapping from GGUF type ids to turbine::StorageType, and row dequantizers
// that reproduce ggml's block layouts bit for bit (ggml-common.h / ggml-quants.c).
//
// dequantize_row is on the CPU decode hot path (one 576..1536-element row per call), so the
// loops for the common formats (F16, Q8_0, Q4_0, Q4_1) are written to auto-vectorize under
// g++ -O3 -march=native: fixed trip counts, no branches, no aliasing, memcpy for unaligned fp16.
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>

#include "../core/error.hpp"
#include "../core/storage_type.hpp"
#include "../core/tensor.hpp"
#include "../core/weight_matrix.hpp"

namespace turbine::io {

/// The turbine storage type for a GGML type id, or nullopt if turbine cannot read that type.
inline std::optional<StorageType> storage_type_from_ggml(uint32_t ggml_type_id) {
  switch (ggml_type_id) {
    case 0: return StorageType::F32;
    case 1: return StorageType::F16;
    case 2: return StorageType::Q4_0;
    case 3: return StorageType::Q4_1;
    case 6: return StorageType::Q5_0;
    case 7: return StorageType::Q5_1;
    case 8: return StorageType::Q8_0;
    case 10: return StorageType::Q2_K;
    case 11: return StorageType::Q3_K;
    case 12: return StorageType::Q4_K;
    case 13: return StorageType::Q5_K;
    case 14: return StorageType::Q6_K;
    case 20: return StorageType::IQ4_NL;
    case 23: return StorageType::IQ4_XS;
    case 30: return StorageType::BF16;
    default: return std::nullopt;
  }
}

/// The GGML type id of a storage type (inverse of storage_type_from_ggml), for writers.
constexpr uint32_t ggml_type_id(StorageType t) {
  switch (t) {
    case StorageType::F32: return 0;
    case StorageType::F16: return 1;
    case StorageType::Q4_0: return 2;
    case StorageType::Q4_1: return 3;
    case StorageType::Q5_0: return 6;
    case StorageType::Q5_1: return 7;
    case StorageType::Q8_0: return 8;
    case StorageType::Q4_K: return 12;
    case StorageType::Q5_K: return 13;
    case StorageType::Q6_K: return 14;
    case StorageType::Q2_K: return 10;
    case StorageType::Q3_K: return 11;
    case StorageType::IQ4_NL: return 20;
    case StorageType::IQ4_XS: return 23;
    case StorageType::BF16: return 30;
    case StorageType::I4G32: case StorageType::I4G64: case StorageType::I4G128:
      fail("storage type ", storage_name(t), " (turbine's group-wise int4) has no GGUF type: write it as safetensors");
  }
  return 0;
}

/// GGML's name for a type id, supported or not ("Q2_K", "IQ2_XS", ...), else "type N", so that
/// error messages can say which unsupported type a file uses. The pointer is valid forever.
inline const char* ggml_type_name(uint32_t id) {
  static constexpr std::array<const char*, 42> kNames = {
      "F32",     "F16",    "Q4_0",    "Q4_1",     "Q4_2",     "Q4_3",    "Q5_0",   "Q5_1",
      "Q8_0",    "Q8_1",   "Q2_K",    "Q3_K",     "Q4_K",     "Q5_K",    "Q6_K",   "Q8_K",
      "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S",    "IQ4_NL",   "IQ3_S",   "IQ2_S",  "IQ4_XS",
      "I8",      "I16",    "I32",     "I64",      "F64",      "IQ1_M",   "BF16",   "Q4_0_4_4",
      "Q4_0_4_8", "Q4_0_8_8", "TQ1_0", "TQ2_0",   "IQ4_NL_4_4", "IQ4_NL_4_8", "IQ4_NL_8_8",
      "MXFP4",   "NVFP4",  "Q1_0"};
  if (id < kNames.size()) return kNames[id];
  // Unknown ids: "type N" strings made once, so the returned pointer never dangles.
  static constexpr uint32_t kFormatted = 256;
  static const auto kUnknown = [] {
    std::array<std::array<char, 16>, kFormatted> names{};
    for (uint32_t i = 0; i < kFormatted; ++i) std::snprintf(names[i].data(), 16, "type %u", i);
    return names;
  }();
  return id < kFormatted ? kUnknown[id].data() : "type >= 256";
}

namespace detail {

/// fp16 -> fp32 without branches, so loops over fp16 data vectorize (turbine::fp16_to_f32
/// normalizes subnormals in a loop). Exact for every input, subnormals, inf and NaN included:
/// normal numbers are rebased by an exponent offset and a power-of-two multiply; subnormals are
/// placed in the mantissa of 0.5f and 0.5f is subtracted back out.
inline float half_to_float(uint16_t h) {
  const uint32_t w = uint32_t{h} << 16;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t two_w = w + w;  // exponent and mantissa, sign shifted out
  const float normal = std::bit_cast<float>((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
  const float subnormal = std::bit_cast<float>((two_w >> 17) | (126u << 23)) - 0.5f;
  const uint32_t magnitude =
      two_w < (1u << 27) ? std::bit_cast<uint32_t>(subnormal) : std::bit_cast<uint32_t>(normal);
  return std::bit_cast<float>(sign | magnitude);
}

inline uint16_t load_u16(const uint8_t* p) {  // GGUF is little-endian; blocks are unaligned
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline float load_half(const uint8_t* p) { return half_to_float(load_u16(p)); }

inline void rows_f32(const uint8_t* src, float* __restrict dst, int64_t n) {
  std::memcpy(dst, src, size_t(n) * 4);
}

inline void rows_f16(const uint8_t* __restrict src, float* __restrict dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = half_to_float(load_u16(src + 2 * i));
}

inline void rows_bf16(const uint8_t* __restrict src, float* __restrict dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = std::bit_cast<float>(uint32_t{load_u16(src + 2 * i)} << 16);
}

// Q8_0 block (34 bytes): fp16 d, int8 q[32]; x = d * q.
inline void rows_q8_0(const uint8_t* __restrict src, float* __restrict dst, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, src += 34, dst += 32) {
    const float d = load_half(src);
    const int8_t* q = reinterpret_cast<const int8_t*>(src + 2);
    for (int j = 0; j < 32; ++j) dst[j] = d * float(q[j]);
  }
}

// Q4_0 block (18 bytes): fp16 d, 16 bytes of nibbles; byte j holds weight j (low nibble) and
// weight j + 16 (high nibble); x = d * (q - 8).
// Why the local copies and separate loops: written as one loop over j with two stores, g++
// vectorizes the loop over blocks instead (strided, 2x slower); this form becomes a few wide
// zero-extend/convert/fma instructions per block.
inline void rows_q4_0(const uint8_t* __restrict src, float* __restrict dst, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, src += 18, dst += 32) {
    uint8_t q[16];
    std::memcpy(q, src + 2, 16);
    const float d = load_half(src);
    float lo[16], hi[16];
    for (int j = 0; j < 16; ++j) lo[j] = float(int(q[j] & 0x0F) - 8);
    for (int j = 0; j < 16; ++j) hi[j] = float(int(q[j] >> 4) - 8);
    for (int j = 0; j < 16; ++j) dst[j] = lo[j] * d;
    for (int j = 0; j < 16; ++j) dst[j + 16] = hi[j] * d;
  }
}

// Q4_1 block (20 bytes): fp16 d, fp16 m, nibbles as Q4_0; x = d * q + m.
inline void rows_q4_1(const uint8_t* __restrict src, float* __restrict dst, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, src += 20, dst += 32) {
    uint8_t q[16];
    std::memcpy(q, src + 4, 16);
    const float d = load_half(src), m = load_half(src + 2);
    float lo[16], hi[16];
    for (int j = 0; j < 16; ++j) lo[j] = float(q[j] & 0x0F);
    for (int j = 0; j < 16; ++j) hi[j] = float(q[j] >> 4);
    for (int j = 0; j < 16; ++j) dst[j] = lo[j] * d + m;
    for (int j = 0; j < 16; ++j) dst[j + 16] = hi[j] * d + m;
  }
}

// Q5_0 block (22 bytes): fp16 d, uint32 qh (bit j = 5th bit of weight j), nibbles as Q4_0;
// x = d * (q - 16).
inline void rows_q5_0(const uint8_t* __restrict src, float* __restrict dst, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, src += 22, dst += 32) {
    const float d = load_half(src);
    const uint32_t qh = load_u32(src + 2);
    const uint8_t* q = src + 6;
    for (int j = 0; j < 16; ++j) {
      const int lo = int(q[j] & 0x0F) | int((qh >> j) & 1u) << 4;
      const int hi = int(q[j] >> 4) | int((qh >> (j + 16)) & 1u) << 4;
      dst[j] = d * float(lo - 16);
      dst[j + 16] = d * float(hi - 16);
    }
  }
}

// Q5_1 block (24 bytes): fp16 d, fp16 m, uint32 qh, nibbles; x = d * q + m.
inline void rows_q5_1(const uint8_t* __restrict src, float* __restrict dst, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, src += 24, dst += 32) {
    const float d = load_half(src), m = load_half(src + 2);
    const uint32_t qh = load_u32(src + 4);
    const uint8_t* q = src + 8;
    for (int j = 0; j < 16; ++j) {
      const int lo = int(q[j] & 0x0F) | int((qh >> j) & 1u) << 4;
      const int hi = int(q[j] >> 4) | int((qh >> (j + 16)) & 1u) << 4;
      dst[j] = float(lo) * d + m;
      dst[j + 16] = float(hi) * d + m;
    }
  }
}

// Q4_K and Q5_K keep 8 six-bit scales and 8 six-bit mins (one per 32 weights) in 12 bytes:
//   bytes 0..3: scale j (low 6 bits), top 2 bits = bits 4..5 of scale j+4
//   bytes 4..7: min j   (low 6 bits), top 2 bits = bits 4..5 of min j+4
//   bytes 8..11: low nibble = bits 0..3 of scale j+4, high nibble = bits 0..3 of min j+4
inline void unpack_k_scales(const uint8_t* p, uint8_t* scale, uint8_t* min) {
  for (int j = 0; j < 4; ++j) {
    scale[j] = p[j] & 63;
    min[j] = p[j + 4] & 63;
    scale[j + 4] = uint8_t((p[j + 8] & 0x0F) | ((p[j] >> 6) << 4));
    min[j + 4] = uint8_t((p[j + 8] >> 4) | ((p[j + 4] >> 6) << 4));
  }
}

// Q4_K super-block (144 bytes, 256 weights): fp16 d, fp16 dmin, 12 bytes scales, 128 bytes qs.
// Each 32-byte chunk c of qs holds weights 64c..64c+31 (low nibbles, sub-block 2c) and
// 64c+32..64c+63 (high nibbles, sub-block 2c+1); x = d*scale[s]*q - dmin*min[s].
// Q5_K super-block (176 bytes): as Q4_K with 32 bytes qh between the scales and qs; the 5th bit of
// weight 64c+l is bit 2c of qh[l], of weight 64c+32+l bit 2c+1.
template <bool kFifthBit>
inline void rows_q4_5_k(const uint8_t* __restrict src, float* __restrict dst, int64_t nb) {
  constexpr int64_t kBlockBytes = kFifthBit ? 176 : 144;
  for (int64_t b = 0; b < nb; ++b, src += kBlockBytes, dst += 256) {
    const float d = load_half(src), dmin = load_half(src + 2);
    uint8_t scale[8], min[8];
    unpack_k_scales(src + 4, scale, min);
    const uint8_t* qh = src + 16;
    const uint8_t* qs = src + (kFifthBit ? 48 : 16);
    for (int c = 0; c < 4; ++c) {
      const float d0 = d * scale[2 * c], m0 = dmin * min[2 * c];
      const float d1 = d * scale[2 * c + 1], m1 = dmin * min[2 * c + 1];
      const uint8_t* q = qs + 32 * c;
      float* y = dst + 64 * c;
      for (int l = 0; l < 32; ++l) {
        int lo = q[l] & 0x0F, hi = q[l] >> 4;
        if constexpr (kFifthBit) {
          lo |= ((qh[l] >> (2 * c)) & 1) << 4;
          hi |= ((qh[l] >> (2 * c + 1)) & 1) << 4;
        }
        y[l] = d0 * float(lo) - m0;
        y[l + 32] = d1 * float(hi) - m1;
      }
    }
  }
}

// Q6_K super-block (210 bytes): ql[128] low nibbles, qh[64] high 2-bit pairs, int8 scales[16]
// (one per 16 weights), fp16 d last. Per 128-weight half h (ql += 64h, qh += 32h), for l < 32:
//   weight l      = ql[l] low  | (qh[l] bits 0..1) << 4     weight l + 64 = ql[l] high    | bits 4..5
//   weight l + 32 = ql[l+32] low | (qh[l] bits 2..3) << 4   weight l + 96 = ql[l+32] high | bits 6..7
// x = d * scale[weight / 16] * (q - 32).
inline void rows_q6_k(const uint8_t* __restrict src, float* __restrict dst, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, src += 210, dst += 256) {
    const int8_t* scales = reinterpret_cast<const int8_t*>(src + 192);
    const float d = load_half(src + 208);
    // Unpack the 6-bit values first, then scale 16 at a time: 3.5x faster than scaling inside
    // the unpack loop, where the scale index varies with l and blocks vectorization.
    int8_t q[256];
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = src + 64 * h;
      const uint8_t* qh = src + 128 + 32 * h;
      int8_t* y = q + 128 * h;
      for (int l = 0; l < 32; ++l) {
        y[l] = int8_t((int(ql[l] & 0x0F) | int((qh[l] >> 0) & 3) << 4) - 32);
        y[l + 32] = int8_t((int(ql[l + 32] & 0x0F) | int((qh[l] >> 2) & 3) << 4) - 32);
        y[l + 64] = int8_t((int(ql[l] >> 4) | int((qh[l] >> 4) & 3) << 4) - 32);
        y[l + 96] = int8_t((int(ql[l + 32] >> 4) | int((qh[l] >> 6) & 3) << 4) - 32);
      }
    }
    for (int g = 0; g < 16; ++g) {
      const float s = d * float(scales[g]);
      for (int l = 0; l < 16; ++l) dst[16 * g + l] = s * float(q[16 * g + l]);
    }
  }
}

// Q2_K super-block (84 bytes, 256 weights): scales[16] (low nibble: scale, high nibble: min, one
// pair per 16 weights), qs[64] 2-bit quants, fp16 d, fp16 dmin. Per 128-weight half h (qs += 32h)
// and bit pair j (shift 2j), weights 128h + 32j + l take bits (qs[l] >> 2j) & 3 for l < 32,
// sub-block 8h + 2j for l < 16 and 8h + 2j + 1 above; x = d * scale * q - dmin * min.
inline void rows_q2_k(const uint8_t* __restrict src, float* __restrict dst, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, src += 84, dst += 256) {
    const uint8_t* scales = src;
    const float d = load_half(src + 80), dmin = load_half(src + 82);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* q = src + 16 + 32 * h;
      for (int j = 0; j < 4; ++j) {
        float* y = dst + 128 * h + 32 * j;
        for (int half = 0; half < 2; ++half) {
          const uint8_t sc = scales[8 * h + 2 * j + half];
          const float dl = d * float(sc & 0x0F), ml = dmin * float(sc >> 4);
          for (int l = 0; l < 16; ++l) y[16 * half + l] = dl * float((q[16 * half + l] >> (2 * j)) & 3) - ml;
        }
      }
    }
  }
}

// Q3_K super-block (110 bytes, 256 weights): hmask[32] (the 3rd bit), qs[64] low 2 bits, 12 bytes
// of sixteen 6-bit scales, fp16 d. Low 2 bits as Q2_K; the high bit of weight 128h + 32j + l is
// bit 4h + j of hmask[l], and a clear bit subtracts 4. Scales: bytes 0..7 hold the low nibbles
// (scale i in byte i % 8, high nibble for i >= 8), bytes 8..11 the top 2 bits (scale i: byte
// 8 + i % 4, bits 2 * (i / 4)); x = d * (scale - 32) * q.
inline void rows_q3_k(const uint8_t* __restrict src, float* __restrict dst, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, src += 110, dst += 256) {
    const uint8_t* hmask = src;
    const uint8_t* packed = src + 96;
    const float d = load_half(src + 108);
    int scale[16];
    for (int i = 0; i < 16; ++i) {
      const int low = (packed[i % 8] >> (4 * (i / 8))) & 0x0F, high = (packed[8 + i % 4] >> (2 * (i / 4))) & 3;
      scale[i] = (low | high << 4) - 32;
    }
    for (int h = 0; h < 2; ++h) {
      const uint8_t* q = src + 32 + 32 * h;
      for (int j = 0; j < 4; ++j) {
        float* y = dst + 128 * h + 32 * j;
        const int bit = 4 * h + j;
        for (int half = 0; half < 2; ++half) {
          const float dl = d * float(scale[8 * h + 2 * j + half]);
          for (int l = 16 * half; l < 16 * half + 16; ++l) {
            const int v = ((q[l] >> (2 * j)) & 3) - (((hmask[l] >> bit) & 1) ? 0 : 4);
            y[l] = dl * float(v);
          }
        }
      }
    }
  }
}

// IQ4_NL and IQ4_XS map each 4-bit index through one non-linear table (ggml's kvalues_iq4nl).
inline constexpr int8_t kIq4Values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

// IQ4_NL block (18 bytes, 32 weights): fp16 d, then nibbles as Q4_0; x = d * table[q].
inline void rows_iq4_nl(const uint8_t* __restrict src, float* __restrict dst, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, src += 18, dst += 32) {
    const float d = load_half(src);
    for (int j = 0; j < 16; ++j) {
      dst[j] = d * float(kIq4Values[src[2 + j] & 0x0F]);
      dst[j + 16] = d * float(kIq4Values[src[2 + j] >> 4]);
    }
  }
}

// IQ4_XS super-block (136 bytes, 256 weights): fp16 d, uint16 scales_h (2 high bits per 32
// weights), scales_l[4] (low nibbles, two per byte), then 8 IQ4_NL-style 16-byte nibble groups;
// sub-block i has scale ((scales_l[i / 2] >> 4 (i % 2)) & 15 | ((scales_h >> 2i) & 3) << 4) - 32.
inline void rows_iq4_xs(const uint8_t* __restrict src, float* __restrict dst, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, src += 136, dst += 256) {
    const float d = load_half(src);
    const uint16_t scales_h = load_u16(src + 2);
    for (int i = 0; i < 8; ++i) {
      const int ls = ((src[4 + i / 2] >> (4 * (i % 2))) & 0x0F) | (((scales_h >> (2 * i)) & 3) << 4);
      const float dl = d * float(ls - 32);
      const uint8_t* q = src + 8 + 16 * i;
      float* y = dst + 32 * i;
      for (int j = 0; j < 16; ++j) {
        y[j] = dl * float(kIq4Values[q[j] & 0x0F]);
        y[j + 16] = dl * float(kIq4Values[q[j] >> 4]);
      }
    }
  }
}

// Group-wise int4 block (see storage_type.hpp): fp16 scale, zero byte, pad, G / 2 nibble bytes.
inline void rows_i4g(const uint8_t* __restrict src, float* __restrict dst, int64_t nb, int group) {
  const int bytes = 4 + group / 2;
  for (int64_t b = 0; b < nb; ++b, src += bytes) {
    const float s = load_half(src), z = float(src[2] & 0x0F);
    const uint8_t* q = src + 4;
    for (int c = 0; c < group / 32; ++c, q += 16, dst += 32)
      for (int j = 0; j < 16; ++j) {
        dst[j] = (float(q[j] & 0x0F) - z) * s;
        dst[j + 16] = (float(q[j] >> 4) - z) * s;
      }
  }
}

}  // namespace detail

/// Dequantizes `n` consecutive elements (a whole number of blocks) stored as `t` at `src` into
/// `dst`. `src` needs no alignment; `dst` must not overlap it.
inline void dequantize_row(StorageType t, const std::byte* src, float* dst, int64_t n) {
  const auto info = storage_info(t);
  check(n >= 0 && n % info.block_elems == 0, "dequantize_row: ", n, " elements is not a multiple of the ",
        info.name, " block size ", info.block_elems);
  const auto* s = reinterpret_cast<const uint8_t*>(src);
  const int64_t nb = n / info.block_elems;
  switch (t) {
    case StorageType::F32: return detail::rows_f32(s, dst, n);
    case StorageType::F16: return detail::rows_f16(s, dst, n);
    case StorageType::BF16: return detail::rows_bf16(s, dst, n);
    case StorageType::Q8_0: return detail::rows_q8_0(s, dst, nb);
    case StorageType::Q4_0: return detail::rows_q4_0(s, dst, nb);
    case StorageType::Q4_1: return detail::rows_q4_1(s, dst, nb);
    case StorageType::Q5_0: return detail::rows_q5_0(s, dst, nb);
    case StorageType::Q5_1: return detail::rows_q5_1(s, dst, nb);
    case StorageType::Q4_K: return detail::rows_q4_5_k<false>(s, dst, nb);
    case StorageType::Q5_K: return detail::rows_q4_5_k<true>(s, dst, nb);
    case StorageType::Q6_K: return detail::rows_q6_k(s, dst, nb);
    case StorageType::I4G32: return detail::rows_i4g(s, dst, nb, 32);
    case StorageType::I4G64: return detail::rows_i4g(s, dst, nb, 64);
    case StorageType::I4G128: return detail::rows_i4g(s, dst, nb, 128);
    case StorageType::Q2_K: return detail::rows_q2_k(s, dst, nb);
    case StorageType::Q3_K: return detail::rows_q3_k(s, dst, nb);
    case StorageType::IQ4_NL: return detail::rows_iq4_nl(s, dst, nb);
    case StorageType::IQ4_XS: return detail::rows_iq4_xs(s, dst, nb);
  }
  fail("dequantize_row: unknown storage type ", int(t));
}

/// Every row of `m` in fp32, row-major [m.rows, m.cols], into `dst`.
inline void dequantize_matrix(const WeightMatrix& m, float* dst) {
  for (int64_t r = 0; r < m.rows; ++r) dequantize_row(m.type, m.row(r), dst + r * m.cols, m.cols);
}

/// Dequantizes row `row` (of `t.rows()`, each `t.cols()` elements) of a file tensor into `dst`.
inline void dequantize_row(const RawTensor& t, int64_t row, float* dst) {
  check(row >= 0 && row < t.rows(), t.file, ": tensor '", t.name, "': row ", row, " out of range [0, ",
        t.rows(), ")");
  const size_t stride = row_bytes(t.type, t.cols());
  check(size_t(row + 1) * stride <= t.nbytes, t.file, ": tensor '", t.name, "': row ", row,
        " lies past its data");
  dequantize_row(t.type, t.data + size_t(row) * stride, dst, t.cols());
}

}  // namespace turbine::io
