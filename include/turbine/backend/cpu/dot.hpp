#pragma once
// dot(stored row, fp32 x): the decode hot path. Weights are expanded to fp32 in registers and
// multiplied with the fp32 activations directly (no quantization of x, unlike llama.cpp), so the
// result matches dequantize-then-dot up to summation order. AVX2+FMA paths for the formats that
// real models ship; every other format goes through dequantize_row.
#include <cstdint>
#include <cstring>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define TURBINE_CPU_AVX2 1
#endif

#include "../../core/half.hpp"
#include "../../core/storage_type.hpp"
#include "../../io/ggml_quants.hpp"
#include "dot_avx512.hpp"

namespace turbine::cpu {

namespace detail {

inline float dot_f32(const float* a, const float* b, int64_t n) {
  float s = 0.f;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

#ifdef TURBINE_CPU_AVX2
inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline __m256 bytes_to_f32(__m128i eight_in_low) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(eight_in_low)); }
inline __m256 sbytes_to_f32(__m128i eight_in_low) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(eight_in_low)); }
// One vcvtph2ps (F16C, present wherever AVX2 is): the scalar fp16_to_f32 costs about ten
// instructions and two of them per block were a third of dot_q4_1's time.
inline float half_at(const std::byte* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

/// Q4_1 block: fp16 d, fp16 m, 16 bytes; weight j = d * q_j + m, q_j in the low nibble of byte j
/// for j < 16 and the high nibble of byte j - 16 otherwise.
inline float dot_q4_1(const std::byte* row, const float* x, int64_t n) {
  __m256 acc = _mm256_setzero_ps(), macc = _mm256_setzero_ps();
  const __m128i low_mask = _mm_set1_epi8(0x0f);
  for (int64_t b = 0; b < n / 32; ++b, row += 20, x += 32) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 4));
    const __m128i lo = _mm_and_si128(raw, low_mask);
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(raw, 4), low_mask);
    const __m256 x0 = _mm256_loadu_ps(x), x1 = _mm256_loadu_ps(x + 8), x2 = _mm256_loadu_ps(x + 16),
                 x3 = _mm256_loadu_ps(x + 24);
    __m256 s = _mm256_mul_ps(bytes_to_f32(lo), x0);
    s = _mm256_fmadd_ps(bytes_to_f32(_mm_srli_si128(lo, 8)), x1, s);
    s = _mm256_fmadd_ps(bytes_to_f32(hi), x2, s);
    s = _mm256_fmadd_ps(bytes_to_f32(_mm_srli_si128(hi, 8)), x3, s);
    const __m256 xs = _mm256_add_ps(_mm256_add_ps(x0, x1), _mm256_add_ps(x2, x3));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(half_at(row)), s, acc);
    macc = _mm256_fmadd_ps(_mm256_set1_ps(half_at(row + 2)), xs, macc);
  }
  return hsum(_mm256_add_ps(acc, macc));
}

/// Group-wise int4 block of `group` elements (storage_type.hpp): fp16 s, zero byte z, pad, then
/// 16 bytes per 32 elements in Q4_1's nibble order; weight = (q - z) * s = s * q - s * z.
inline float dot_i4g(const std::byte* row, const float* x, int64_t n, int group) {
  __m256 acc = _mm256_setzero_ps(), zacc = _mm256_setzero_ps();
  const __m128i low_mask = _mm_set1_epi8(0x0f);
  const int bytes = 4 + group / 2;
  for (int64_t b = 0; b < n / group; ++b, row += bytes) {
    const float s = half_at(row), z = float(std::to_integer<int>(row[2]) & 0x0F);
    __m256 qs = _mm256_setzero_ps(), xs = _mm256_setzero_ps();
    for (int c = 0; c < group / 32; ++c, x += 32) {
      const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 4 + 16 * c));
      const __m128i lo = _mm_and_si128(raw, low_mask);
      const __m128i hi = _mm_and_si128(_mm_srli_epi16(raw, 4), low_mask);
      const __m256 x0 = _mm256_loadu_ps(x), x1 = _mm256_loadu_ps(x + 8), x2 = _mm256_loadu_ps(x + 16),
                   x3 = _mm256_loadu_ps(x + 24);
      qs = _mm256_fmadd_ps(bytes_to_f32(lo), x0, qs);
      qs = _mm256_fmadd_ps(bytes_to_f32(_mm_srli_si128(lo, 8)), x1, qs);
      qs = _mm256_fmadd_ps(bytes_to_f32(hi), x2, qs);
      qs = _mm256_fmadd_ps(bytes_to_f32(_mm_srli_si128(hi, 8)), x3, qs);
      xs = _mm256_add_ps(xs, _mm256_add_ps(_mm256_add_ps(x0, x1), _mm256_add_ps(x2, x3)));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(s), qs, acc);
    zacc = _mm256_fmadd_ps(_mm256_set1_ps(s * z), xs, zacc);
  }
  return hsum(_mm256_sub_ps(acc, zacc));
}

/// Q4_0 block: fp16 d, 16 bytes; weight j = d * (q_j - 8), nibbles as in Q4_1.
inline float dot_q4_0(const std::byte* row, const float* x, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  const __m128i low_mask = _mm_set1_epi8(0x0f);
  const __m256 eight = _mm256_set1_ps(8.0f);
  for (int64_t b = 0; b < n / 32; ++b, row += 18, x += 32) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2));
    const __m128i lo = _mm_and_si128(raw, low_mask);
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(raw, 4), low_mask);
    __m256 s = _mm256_mul_ps(_mm256_sub_ps(bytes_to_f32(lo), eight), _mm256_loadu_ps(x));
    s = _mm256_fmadd_ps(_mm256_sub_ps(bytes_to_f32(_mm_srli_si128(lo, 8)), eight), _mm256_loadu_ps(x + 8), s);
    s = _mm256_fmadd_ps(_mm256_sub_ps(bytes_to_f32(hi), eight), _mm256_loadu_ps(x + 16), s);
    s = _mm256_fmadd_ps(_mm256_sub_ps(bytes_to_f32(_mm_srli_si128(hi, 8)), eight), _mm256_loadu_ps(x + 24), s);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(half_at(row)), s, acc);
  }
  return hsum(acc);
}

/// Q8_0 block: fp16 d, 32 signed bytes; weight j = d * q_j.
inline float dot_q8_0(const std::byte* row, const float* x, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / 32; ++b, row += 34, x += 32) {
    const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2));
    const __m128i q1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 18));
    __m256 s = _mm256_mul_ps(sbytes_to_f32(q0), _mm256_loadu_ps(x));
    s = _mm256_fmadd_ps(sbytes_to_f32(_mm_srli_si128(q0, 8)), _mm256_loadu_ps(x + 8), s);
    s = _mm256_fmadd_ps(sbytes_to_f32(q1), _mm256_loadu_ps(x + 16), s);
    s = _mm256_fmadd_ps(sbytes_to_f32(_mm_srli_si128(q1, 8)), _mm256_loadu_ps(x + 24), s);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(half_at(row)), s, acc);
  }
  return hsum(acc);
}

// F16 and BF16: two accumulators, so that consecutive FMAs do not wait on each other's latency.
inline float dot_f16(const std::byte* row, const float* x, int64_t n) {
  __m256 acc = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * i))),
                          _mm256_loadu_ps(x + i), acc);
    acc1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * i + 16))),
                           _mm256_loadu_ps(x + i + 8), acc1);
  }
  for (; i + 8 <= n; i += 8)
    acc = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * i))),
                          _mm256_loadu_ps(x + i), acc);
  float s = hsum(_mm256_add_ps(acc, acc1));
  for (; i < n; ++i) s += half_at(row + 2 * i) * x[i];
  return s;
}

inline float dot_bf16(const std::byte* row, const float* x, int64_t n) {
  auto widen = [](const std::byte* p) {
    return _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
  };
  __m256 acc = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc = _mm256_fmadd_ps(widen(row + 2 * i), _mm256_loadu_ps(x + i), acc);
    acc1 = _mm256_fmadd_ps(widen(row + 2 * i + 16), _mm256_loadu_ps(x + i + 8), acc1);
  }
  for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(widen(row + 2 * i), _mm256_loadu_ps(x + i), acc);
  float s = hsum(_mm256_add_ps(acc, acc1));
  for (; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, row + 2 * i, 2);
    s += bf16_to_f32(h) * x[i];
  }
  return s;
}

inline float dot_f32_avx(const float* a, const float* x, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(x + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(x + i + 8), acc1);
  }
  float s = hsum(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i) s += a[i] * x[i];
  return s;
}
#endif

}  // namespace detail

/// True if dot_row has a fused path for `t` (no scratch row needed).
inline bool has_fused_dot(StorageType t) {
#ifdef TURBINE_CPU_AVX2
  switch (t) {
    case StorageType::F32: case StorageType::F16: case StorageType::BF16:
    case StorageType::Q4_0: case StorageType::Q4_1: case StorageType::Q8_0:
    case StorageType::I4G32: case StorageType::I4G64: case StorageType::I4G128: return true;
    default: return false;
  }
#else
  return t == StorageType::F32;
#endif
}

/// Floats prepare_x may write for rows of n elements.
inline int64_t prepared_x_floats(int64_t n) {
#ifdef TURBINE_CPU_AVX512
  return detail::nibble_x_floats(n);
#else
  (void)n;
  return 0;
#endif
}

/// Rearranges x once per product for the formats whose fused dot reads it rearranged (Q4_0, Q4_1
/// and I4G* with AVX-512: see prepare_nibble_x) into `out` (prepared_x_floats(n)); false for the rest.
inline bool prepare_x(StorageType t, const float* x, int64_t n, float* out) {
#ifdef TURBINE_CPU_AVX512
  if (t == StorageType::Q4_0 || t == StorageType::Q4_1 || is_int4_groups(t)) {
    detail::prepare_nibble_x(x, n, out);
    return true;
  }
#endif
  (void)t, (void)x, (void)n, (void)out;
  return false;
}

/// sum_i w[i] * x[i] for one stored row of n elements. `scratch` (n floats) is used only by
/// formats without a fused path; `prepared` is what prepare_x wrote for x, if it returned true.
inline float dot_row(StorageType t, const std::byte* row, const float* x, int64_t n, float* scratch,
                     const float* prepared = nullptr) {
#ifdef TURBINE_CPU_AVX512
  if (prepared && t == StorageType::Q4_1) return detail::dot_nibbles<true>(row, x, prepared, n);
  if (prepared && t == StorageType::Q4_0) return detail::dot_nibbles<false>(row, x, prepared, n);
  if (prepared && t == StorageType::I4G128) return detail::dot_i4g_runs<128>(row, x, prepared, n);
  if (prepared && t == StorageType::I4G64) return detail::dot_i4g_runs<64>(row, x, prepared, n);
  if (prepared && t == StorageType::I4G32) return detail::dot_i4g_runs<32>(row, x, prepared, n);
#else
  (void)prepared;
#endif
#ifdef TURBINE_CPU_AVX2
  switch (t) {
    case StorageType::F32: return detail::dot_f32_avx(reinterpret_cast<const float*>(row), x, n);
#ifdef TURBINE_CPU_AVX512
    case StorageType::F16: return detail::dot_f16_512(row, x, n);
    case StorageType::BF16: return detail::dot_bf16_512(row, x, n);
    case StorageType::Q4_0: return detail::dot_q4_0_512(row, x, n);
    case StorageType::Q4_1: return detail::dot_q4_1_512(row, x, n);
    case StorageType::Q8_0: return detail::dot_q8_0_512(row, x, n);
    case StorageType::I4G32: return detail::dot_i4g_512(row, x, n, 32);
    case StorageType::I4G64: return detail::dot_i4g_512(row, x, n, 64);
    case StorageType::I4G128: return detail::dot_i4g_512(row, x, n, 128);
#else
    case StorageType::F16: return detail::dot_f16(row, x, n);
    case StorageType::BF16: return detail::dot_bf16(row, x, n);
    case StorageType::Q4_0: return detail::dot_q4_0(row, x, n);
    case StorageType::Q4_1: return detail::dot_q4_1(row, x, n);
    case StorageType::Q8_0: return detail::dot_q8_0(row, x, n);
    case StorageType::I4G32: return detail::dot_i4g(row, x, n, 32);
    case StorageType::I4G64: return detail::dot_i4g(row, x, n, 64);
    case StorageType::I4G128: return detail::dot_i4g(row, x, n, 128);
#endif
    default: break;
  }
#else
  if (t == StorageType::F32) return detail::dot_f32(reinterpret_cast<const float*>(row), x, n);
#endif
  io::dequantize_row(t, row, scratch, n);
  return detail::dot_f32(scratch, x, n);
}

}  // namespace turbine::cpu
