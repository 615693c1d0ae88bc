#pragma once
// AVX-512 forms of dot.hpp's fused dot products (fp32 activations, weights expanded in registers):
// a 32-weight block is two 16-lane vectors, so each block takes half the instructions of the
// AVX2 form. Same arithmetic per block (products summed in fp32, then scaled), so the results
// match dequantize-then-dot up to summation order, like the AVX2 forms.
#if defined(__AVX512F__) && defined(__F16C__) && defined(__FMA__)
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#define TURBINE_CPU_AVX512 1

namespace turbine::cpu::detail {

/// The fp16 at p as a float (one vcvtph2ps).
inline float half_at_512(const std::byte* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

/// The sum of the 16 lanes, through memory once a row: GCC 12's _mm512_reduce_add_ps,
/// _mm512_castps512_ps256 and _mm512_shuffle_f32x4 pass an "undefined" vector that trips its own
/// -Wuninitialized in every file that inlines them.
inline float hsum512(__m512 v) {
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, v);
  const __m256 s = _mm256_add_ps(_mm256_load_ps(lanes), _mm256_load_ps(lanes + 8));
  const __m128 q = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  __m128 r = _mm_add_ps(q, _mm_movehl_ps(q, q));
  return _mm_cvtss_f32(_mm_add_ss(r, _mm_movehdup_ps(r)));
}

/// 16 nibble bytes (Q4_0/Q4_1/I4G order: byte j holds weight j low, weight j + 16 high) as two
/// vectors of 16 floats, weights 0..15 and 16..31.
inline void nibbles_to_f32x32(const std::byte* p, __m512& lo, __m512& hi) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i mask = _mm_set1_epi8(0x0f);
  lo = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(raw, mask)));
  hi = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(raw, 4), mask)));
}

inline float dot_q4_1_512(const std::byte* row, const float* x, int64_t n) {
  __m512 acc = _mm512_setzero_ps(), macc = _mm512_setzero_ps();
  for (int64_t b = 0; b < n / 32; ++b, row += 20, x += 32) {
    __m512 lo, hi;
    nibbles_to_f32x32(row + 4, lo, hi);
    const __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
    const __m512 s = _mm512_fmadd_ps(hi, x1, _mm512_mul_ps(lo, x0));
    acc = _mm512_fmadd_ps(_mm512_set1_ps(half_at_512(row)), s, acc);
    macc = _mm512_fmadd_ps(_mm512_set1_ps(half_at_512(row + 2)), _mm512_add_ps(x0, x1), macc);
  }
  return hsum512(_mm512_add_ps(acc, macc));
}

inline float dot_q4_0_512(const std::byte* row, const float* x, int64_t n) {
  __m512 acc = _mm512_setzero_ps();
  const __m512 eight = _mm512_set1_ps(8.0f);
  for (int64_t b = 0; b < n / 32; ++b, row += 18, x += 32) {
    __m512 lo, hi;
    nibbles_to_f32x32(row + 2, lo, hi);
    const __m512 s = _mm512_fmadd_ps(_mm512_sub_ps(hi, eight), _mm512_loadu_ps(x + 16),
                                     _mm512_mul_ps(_mm512_sub_ps(lo, eight), _mm512_loadu_ps(x)));
    acc = _mm512_fmadd_ps(_mm512_set1_ps(half_at_512(row)), s, acc);
  }
  return hsum512(acc);
}

/// Group-wise int4 (storage_type.hpp): weight = (q - z) * s, summed as s * (q . x) - s * z * sum(x).
inline float dot_i4g_512(const std::byte* row, const float* x, int64_t n, int group) {
  __m512 acc = _mm512_setzero_ps(), zacc = _mm512_setzero_ps();
  const int bytes = 4 + group / 2;
  for (int64_t b = 0; b < n / group; ++b, row += bytes) {
    const float s = half_at_512(row), z = float(std::to_integer<int>(row[2]) & 0x0F);
    __m512 qs = _mm512_setzero_ps(), xs = _mm512_setzero_ps();
    for (int c = 0; c < group / 32; ++c, x += 32) {
      __m512 lo, hi;
      nibbles_to_f32x32(row + 4 + 16 * c, lo, hi);
      const __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
      qs = _mm512_fmadd_ps(hi, x1, _mm512_fmadd_ps(lo, x0, qs));
      xs = _mm512_add_ps(xs, _mm512_add_ps(x0, x1));
    }
    acc = _mm512_fmadd_ps(_mm512_set1_ps(s), qs, acc);
    zacc = _mm512_fmadd_ps(_mm512_set1_ps(s * z), xs, zacc);
  }
  return hsum512(_mm512_sub_ps(acc, zacc));
}

inline float dot_q8_0_512(const std::byte* row, const float* x, int64_t n) {
  __m512 acc = _mm512_setzero_ps();
  for (int64_t b = 0; b < n / 32; ++b, row += 34, x += 32) {
    const __m512 q0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2))));
    const __m512 q1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 18))));
    const __m512 s = _mm512_fmadd_ps(q1, _mm512_loadu_ps(x + 16), _mm512_mul_ps(q0, _mm512_loadu_ps(x)));
    acc = _mm512_fmadd_ps(_mm512_set1_ps(half_at_512(row)), s, acc);
  }
  return hsum512(acc);
}

/// fp16 and bf16 rows: 32 weights an iteration on two accumulators (one accumulator would wait on
/// the FMA latency every 16 weights).
inline float dot_f16_512(const std::byte* row, const float* x, int64_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * i))),
                         _mm512_loadu_ps(x + i), a0);
    a1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * i + 32))),
                         _mm512_loadu_ps(x + i + 16), a1);
  }
  float s = hsum512(_mm512_add_ps(a0, a1));
  for (; i < n; ++i) s += half_at_512(row + 2 * i) * x[i];
  return s;
}

inline float dot_bf16_512(const std::byte* row, const float* x, int64_t n) {
  auto widen = [](const std::byte* p) {  // 16 bf16 -> 16 floats: the bits in the upper half of each lane
    return _mm512_castsi512_ps(
        _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
  };
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm512_fmadd_ps(widen(row + 2 * i), _mm512_loadu_ps(x + i), a0);
    a1 = _mm512_fmadd_ps(widen(row + 2 * i + 32), _mm512_loadu_ps(x + i + 16), a1);
  }
  float s = hsum512(_mm512_add_ps(a0, a1));
  for (; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, row + 2 * i, 2);
    const uint32_t bits = uint32_t{h} << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    s += f * x[i];
  }
  return s;
}

/// Weights per run of the nibble formats' rearranged dot: 4 blocks of 32.
inline constexpr int64_t kNibbleRun = 128;

/// Floats that prepare_nibble_x writes for a row of n weights.
inline int64_t nibble_x_floats(int64_t n) { return n / kNibbleRun * kNibbleRun + n / 32; }

/// x rearranged once per product for dot_nibbles (Q4_0, Q4_1): the 16 bytes of a block are four
/// dwords, and shifting a dword right by 4k leaves its nibble k in the low bits, so a run of 4
/// blocks (one 16-byte slice each, a dword per lane) yields 16 weights per shift without a shuffle.
/// Vector k of run r holds, in lane 4b + i, x[128r + 32b + 4i + k/2 + 16 (k % 2)]: the weight of
/// nibble k of dword i of block b. Then the sum of x over every block (for the offset term).
/// Blocks after the last whole run are not rearranged: dot_nibbles takes them from x.
inline void prepare_nibble_x(const float* x, int64_t n, float* out) {
  const int64_t runs = n / kNibbleRun;
  for (int64_t r = 0; r < runs; ++r)
    for (int k = 0; k < 8; ++k)
      for (int l = 0; l < 16; ++l)
        out[r * kNibbleRun + 16 * k + l] = x[r * kNibbleRun + 32 * (l / 4) + 4 * (l % 4) + k / 2 + 16 * (k % 2)];
  float* sums = out + runs * kNibbleRun;
  for (int64_t b = 0; b < n / 32; ++b) {
    float s = 0;
    for (int j = 0; j < 32; ++j) s += x[32 * b + j];
    sums[b] = s;
  }
}

/// Per lane, the products of one 128-weight run's nibbles (raw: its 16 dwords, as
/// prepare_nibble_x describes) with the rearranged x of that run, summed over the 8 nibbles.
inline __m512 nibble_run_dot(__m512i raw, const float* xp) {
  const __m512i mask = _mm512_set1_epi32(0x0f);
  auto nibble = [&](int k) {
    return _mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srli_epi32(raw, static_cast<unsigned>(4 * k)), mask));
  };
  // Two chains, so the FMAs do not wait on each other.
  __m512 s0 = _mm512_mul_ps(nibble(0), _mm512_loadu_ps(xp));
  __m512 s1 = _mm512_mul_ps(nibble(1), _mm512_loadu_ps(xp + 16));
  s0 = _mm512_fmadd_ps(nibble(2), _mm512_loadu_ps(xp + 32), s0);
  s1 = _mm512_fmadd_ps(nibble(3), _mm512_loadu_ps(xp + 48), s1);
  s0 = _mm512_fmadd_ps(nibble(4), _mm512_loadu_ps(xp + 64), s0);
  s1 = _mm512_fmadd_ps(nibble(5), _mm512_loadu_ps(xp + 80), s1);
  s0 = _mm512_fmadd_ps(nibble(6), _mm512_loadu_ps(xp + 96), s0);
  s1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(raw, 28)), _mm512_loadu_ps(xp + 112), s1);
  return _mm512_add_ps(s0, s1);
}

/// The sum of 4 lanes.
inline float hsum128(__m128 v) {
  v = _mm_add_ps(v, _mm_movehl_ps(v, v));
  return _mm_cvtss_f32(_mm_add_ss(v, _mm_movehdup_ps(v)));
}

/// Q4_1 (d, m, 16 nibble bytes) or Q4_0 (d, 16 nibble bytes; weight d (q - 8), so m = -8 d):
/// sum over blocks of d * (q . x) + m * sum(x), with x as prepare_nibble_x left it in `xp`.
template <bool kHasMin>
inline float dot_nibbles(const std::byte* row, const float* x, const float* xp, int64_t n) {
  constexpr int kBlockBytes = kHasMin ? 20 : 18, kQs = kHasMin ? 4 : 2;
  const int64_t runs = n / kNibbleRun;
  const float* sums = xp + runs * kNibbleRun;
  __m512 acc = _mm512_setzero_ps();
  __m128 macc = _mm_setzero_ps();
  const __m512i spread = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
  for (int64_t r = 0; r < runs; ++r, row += 4 * kBlockBytes, xp += kNibbleRun, sums += 4) {
    __m512i raw = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + kQs)));
    raw = _mm512_inserti32x4(raw, _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + kBlockBytes + kQs)), 1);
    raw = _mm512_inserti32x4(raw, _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * kBlockBytes + kQs)), 2);
    raw = _mm512_inserti32x4(raw, _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 3 * kBlockBytes + kQs)), 3);
    const __m512 q_dot_x = nibble_run_dot(raw, xp);
    __m128 d, m;
    // Scales gathered through registers: stores to a buffer then a 16-byte load of it would stall
    // on store forwarding.
    auto u32_at = [&](int b) {
      uint32_t v;
      std::memcpy(&v, row + b * kBlockBytes, 4);
      return static_cast<int>(v);
    };
    if constexpr (kHasMin) {  // d and m of 4 blocks: fp16 pairs at the block starts
      const __m256 f = _mm256_cvtph_ps(_mm_set_epi32(u32_at(3), u32_at(2), u32_at(1), u32_at(0)));  // d0 m0 d1 m1 ...
      const __m256 split = _mm256_permutevar8x32_ps(f, _mm256_set_epi32(7, 5, 3, 1, 6, 4, 2, 0));
      d = _mm256_castps256_ps128(split);
      m = _mm256_extractf128_ps(split, 1);
    } else {
      // The low half of each dword is the block's d (the high half, its first nibbles, is dropped).
      const __m128i dq = _mm_set_epi32(u32_at(3), u32_at(2), u32_at(1), u32_at(0));
      d = _mm_cvtph_ps(_mm_shuffle_epi8(dq, _mm_set_epi8(-1, -1, -1, -1, -1, -1, -1, -1, 13, 12, 9, 8, 5, 4, 1, 0)));
      m = _mm_mul_ps(d, _mm_set1_ps(-8.0f));
    }
    acc = _mm512_fmadd_ps(_mm512_permutexvar_ps(spread, _mm512_castps128_ps512(d)), q_dot_x, acc);
    macc = _mm_fmadd_ps(m, _mm_loadu_ps(sums), macc);
  }
  float total = hsum512(acc) + hsum128(macc);
  // The blocks after the last whole run, from x as it is.
  const int64_t done = runs * kNibbleRun;
  if (done < n) {
    x += done;
    if constexpr (kHasMin) total += dot_q4_1_512(row, x, n - done);
    else total += dot_q4_0_512(row, x, n - done);
  }
  return total;
}

/// Group-wise int4 (storage_type.hpp) over x as prepare_nibble_x left it: the same run of 128
/// weights as dot_nibbles (its 32-weight chunks have Q4_1's nibble order), one group (G = 128),
/// two (64) or four (32) per run; weight (q - z) s summed as s (q . x) - s z sum(x).
template <int G>
inline float dot_i4g_runs(const std::byte* row, const float* x, const float* xp, int64_t n) {
  constexpr int kGroupBytes = 4 + G / 2;
  constexpr int kGroupsPerRun = 128 / G;
  const int64_t runs = n / kNibbleRun;
  const float* sums = xp + runs * kNibbleRun;
  __m512 acc = _mm512_setzero_ps();
  __m128 macc = _mm_setzero_ps();
  auto u32_at = [&](int off) {  // a group's header (fp16 s, zero byte, pad) through a register
    uint32_t v;
    std::memcpy(&v, row + off, 4);
    return static_cast<int>(v);
  };
  for (int64_t r = 0; r < runs; ++r, row += kGroupsPerRun * kGroupBytes, xp += kNibbleRun, sums += 4) {
    __m512i raw;
    __m512 d;
    __m128 m;  // per 32 weights: -s * z
    if constexpr (G == 128) {
      raw = _mm512_loadu_si512(row + 4);
      const float s = _cvtsh_ss(static_cast<uint16_t>(u32_at(0) & 0xffff)), z = float((u32_at(0) >> 16) & 0x0f);
      d = _mm512_set1_ps(s);
      m = _mm_set1_ps(-s * z);
    } else if constexpr (G == 64) {
      raw = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 4))),
                               _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + kGroupBytes + 4)), 1);
      const int h0 = u32_at(0), h1 = u32_at(kGroupBytes);
      const float s0 = _cvtsh_ss(static_cast<uint16_t>(h0 & 0xffff)), s1 = _cvtsh_ss(static_cast<uint16_t>(h1 & 0xffff));
      d = _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(s0), _mm512_set1_ps(s1));
      const float m0 = -s0 * float((h0 >> 16) & 0x0f), m1 = -s1 * float((h1 >> 16) & 0x0f);
      m = _mm_set_ps(m1, m1, m0, m0);
    } else {
      raw = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 4)));
      raw = _mm512_inserti32x4(raw, _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + kGroupBytes + 4)), 1);
      raw = _mm512_inserti32x4(raw, _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * kGroupBytes + 4)), 2);
      raw = _mm512_inserti32x4(raw, _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 3 * kGroupBytes + 4)), 3);
      const __m128i h = _mm_set_epi32(u32_at(3 * kGroupBytes), u32_at(2 * kGroupBytes), u32_at(kGroupBytes), u32_at(0));
      const __m128 s = _mm_cvtph_ps(_mm_shuffle_epi8(h, _mm_set_epi8(-1, -1, -1, -1, -1, -1, -1, -1, 13, 12, 9, 8, 5, 4, 1, 0)));
      const __m128 z = _mm_cvtepi32_ps(_mm_and_si128(_mm_srli_epi32(h, 16), _mm_set1_epi32(0x0f)));
      d = _mm512_permutexvar_ps(_mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0), _mm512_castps128_ps512(s));
      m = _mm_sub_ps(_mm_setzero_ps(), _mm_mul_ps(s, z));
    }
    const __m512 q_dot_x = nibble_run_dot(raw, xp);
    acc = _mm512_fmadd_ps(d, q_dot_x, acc);
    macc = _mm_fmadd_ps(m, _mm_loadu_ps(sums), macc);
  }
  float total = hsum512(acc) + hsum128(macc);
  const int64_t done = runs * kNibbleRun;
  if (done < n) total += dot_i4g_512(row, x + done, n - done, G);
  return total;
}

}  // namespace turbine::cpu::detail
#endif
