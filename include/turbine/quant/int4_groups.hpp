#pragma once
// Group-wise asymmetric 4-bit weights as AutoAWQ stores them ("gemm" version), and round-to-nearest
// quantization by AutoAWQ's rules. Layout of one Linear with weight W [out, in] (torch order):
//   qweight int32 [in, out / 8]       W^T's 4-bit values, 8 output columns per word
//   qzeros  int32 [in / group, out / 8] zero points, packed the same way
//   scales  fp16  [in / group, out]
//   W[j][i] = (q[i][j] - zero[i / group][j]) * scale[i / group][j]
// Within a word, nibble k (bits 4k .. 4k+3) holds column 8c + kAwqOrder[k] of word c: the order
// AutoAWQ's packer writes (its AWQ_ORDER), so that its kernels' interleaved dequantization lands
// the columns in order.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "../core/error.hpp"
#include "../core/half.hpp"
#include "../core/storage_type.hpp"

namespace turbine::quant {

/// Column (within its word of 8) held by nibble k of an AutoAWQ "gemm" packed int32.
inline constexpr int kAwqOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};

/// Packs 4-bit values [rows, cols] (each 0..15) into AutoAWQ words [rows, cols / 8].
inline std::vector<int32_t> awq_pack_int4(const std::vector<uint8_t>& values, int64_t rows, int64_t cols) {
  check(cols % 8 == 0, "awq_pack_int4: ", cols, " columns is not a multiple of 8");
  check(static_cast<int64_t>(values.size()) == rows * cols, "awq_pack_int4: ", values.size(), " values for [", rows,
        ", ", cols, "]");
  std::vector<int32_t> packed(static_cast<size_t>(rows * (cols / 8)), 0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols / 8; ++c) {
      uint32_t word = 0;
      for (int k = 0; k < 8; ++k) {
        const uint8_t v = values[r * cols + 8 * c + kAwqOrder[k]];
        check(v < 16, "awq_pack_int4: value ", int(v), " at [", r, ", ", 8 * c + kAwqOrder[k], "] does not fit 4 bits");
        word |= uint32_t(v) << (4 * k);
      }
      packed[r * (cols / 8) + c] = static_cast<int32_t>(word);
    }
  return packed;
}

/// Unpacks AutoAWQ words [rows, cols / 8] into 4-bit values [rows, cols].
inline std::vector<uint8_t> awq_unpack_int4(const int32_t* packed, int64_t rows, int64_t cols) {
  check(cols % 8 == 0, "awq_unpack_int4: ", cols, " columns is not a multiple of 8");
  std::vector<uint8_t> values(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols / 8; ++c) {
      const uint32_t word = static_cast<uint32_t>(packed[r * (cols / 8) + c]);
      for (int k = 0; k < 8; ++k) values[r * cols + 8 * c + kAwqOrder[k]] = (word >> (4 * k)) & 0xF;
    }
  return values;
}

/// One Linear's weights in group-wise 4-bit form, unpacked (the packed form is awq_pack_int4 of
/// q and zeros). Indices follow the AutoAWQ tensors: q [in, out], zeros and scales [in / group, out].
struct Int4Groups {
  int64_t out = 0;    ///< output features (rows of W)
  int64_t in = 0;     ///< input features (columns of W)
  int64_t group = 0;  ///< input elements that share a scale and a zero point
  std::vector<uint8_t> q;              ///< [in, out] 0..15
  std::vector<uint8_t> zeros;          ///< [in / group, out] 0..15
  std::vector<float> scales;           ///< [in / group, out] (stored as fp16 in a model file)

  /// W[j][i] as the kernels reconstruct it.
  float weight(int64_t j, int64_t i) const {
    const int64_t g = i / group;
    return (float(q[i * out + j]) - float(zeros[g * out + j])) * scales[g * out + j];
  }
  /// W [out, in] in floats.
  std::vector<float> dequantize() const {
    std::vector<float> w(static_cast<size_t>(out * in));
    for (int64_t j = 0; j < out; ++j)
      for (int64_t i = 0; i < in; ++i) w[j * in + i] = weight(j, i);
    return w;
  }
};

/// One group's round-to-nearest parameters by AutoAWQ's pseudo-quantization: scale = max(max -
/// min, 1e-5) / 15 (then `round_scale`, e.g. to fp16), zero = clamp(-round(min / scale), 0, 15).
/// q(w) = clamp(round(w / scale) + zero, 0, 15).
template <class RoundScale>
void rtn_group_params(const float* x, int64_t n, RoundScale&& round_scale, float& scale, float& zero) {
  float lo = x[0], hi = x[0];
  for (int64_t e = 1; e < n; ++e) {
    lo = std::min(lo, x[e]);
    hi = std::max(hi, x[e]);
  }
  scale = round_scale(std::max(hi - lo, 1e-5f) / 15.0f);
  zero = std::clamp(-std::nearbyint(lo / scale), 0.0f, 15.0f);
}

/// The 4-bit value of w in a group with these parameters.
inline uint8_t rtn_level(float w, float scale, float zero) {
  return static_cast<uint8_t>(std::clamp(std::nearbyint(w / scale) + zero, 0.0f, 15.0f));
}

/// Round-to-nearest 4-bit quantization of W [out, in] (row-major, torch order), by AutoAWQ's
/// pseudo-quantization (rtn_group_params). `round_scale` may round the scale (to fp16, as a
/// model file stores it) before q is computed against it; identity by default.
template <class RoundScale = float (*)(float)>
Int4Groups rtn_quantize_int4(const float* w, int64_t out, int64_t in, int64_t group,
                             RoundScale round_scale = [](float s) { return s; }) {
  check(out > 0 && in > 0 && group > 0, "rtn_quantize_int4: bad sizes (out ", out, ", in ", in, ", group ", group, ")");
  check(in % group == 0, "rtn_quantize_int4: in_features ", in, " is not a multiple of the group size ", group);
  Int4Groups r;
  r.out = out;
  r.in = in;
  r.group = group;
  const int64_t groups = in / group;
  r.q.resize(static_cast<size_t>(in * out));
  r.zeros.resize(static_cast<size_t>(groups * out));
  r.scales.resize(static_cast<size_t>(groups * out));
  for (int64_t j = 0; j < out; ++j)
    for (int64_t g = 0; g < groups; ++g) {
      const float* x = w + j * in + g * group;
      for (int64_t e = 0; e < group; ++e)
        check(std::isfinite(x[e]), "rtn_quantize_int4: weight [", j, ", ", g * group + e, "] is not finite");
      float scale, zero;
      rtn_group_params(x, group, round_scale, scale, zero);
      r.scales[g * out + j] = scale;
      r.zeros[g * out + j] = static_cast<uint8_t>(zero);
      for (int64_t e = 0; e < group; ++e) r.q[(g * group + e) * out + j] = rtn_level(x[e], scale, zero);
    }
  return r;
}

/// W [out, in] replaced by what rtn_quantize_int4 (fp16 scales) would reconstruct: the searches
/// of awq_search.hpp compare candidates through this.
inline void pseudo_quantize_int4(float* w, int64_t out, int64_t in, int64_t group);

/// A scale as a model file stores it (fp16), for rtn_quantize_int4's round_scale.
inline float round_scale_fp16(float s) { return fp16_to_f32(f32_to_fp16(s)); }

inline void pseudo_quantize_int4(float* w, int64_t out, int64_t in, int64_t group) {
  for (int64_t j = 0; j < out; ++j)
    for (int64_t g = 0; g < in / group; ++g) {
      float* x = w + j * in + g * group;
      float scale, zero;
      rtn_group_params(x, group, round_scale_fp16, scale, zero);
      for (int64_t e = 0; e < group; ++e) x[e] = (float(rtn_level(x[e], scale, zero)) - zero) * scale;
    }
}

/// `g` in turbine's row layout (StorageType I4G<group>, see storage_type.hpp): [out] rows of
/// in / group blocks. Scales are stored as fp16: round them first (round_scale_fp16) to keep
/// the weights exactly.
inline std::vector<std::byte> int4_groups_to_rows(const Int4Groups& g) {
  const StorageType t = int4_groups_type(g.group);
  const size_t stride = row_bytes(t, g.in), block = static_cast<size_t>(storage_info(t).block_bytes);
  std::vector<std::byte> rows(stride * static_cast<size_t>(g.out), std::byte{0});
  for (int64_t j = 0; j < g.out; ++j)
    for (int64_t b = 0; b < g.in / g.group; ++b) {
      std::byte* p = rows.data() + static_cast<size_t>(j) * stride + static_cast<size_t>(b) * block;
      const uint16_t s = f32_to_fp16(g.scales[b * g.out + j]);
      p[0] = std::byte(s & 0xff);
      p[1] = std::byte(s >> 8);
      p[2] = std::byte(g.zeros[b * g.out + j] & 0x0F);
      for (int64_t e = 0; e < g.group; ++e) {
        const uint8_t q = g.q[(b * g.group + e) * g.out + j];
        const int64_t c = e / 32, w = e % 32;  // 32-element chunk, then Q4_1's nibble order
        std::byte& dst = p[4 + 16 * c + (w % 16)];
        dst |= std::byte(w < 16 ? q : q << 4);
      }
    }
  return rows;
}

/// AutoAWQ "gemm" tensors of one Linear: what a checkpoint stores.
struct AwqTensors {
  std::vector<int32_t> qweight;  ///< [in, out / 8]
  std::vector<int32_t> qzeros;   ///< [in / group, out / 8]
  std::vector<uint16_t> scales;  ///< [in / group, out] fp16 bits
};

/// Packs `g` as AutoAWQ stores it.
inline AwqTensors int4_groups_to_awq(const Int4Groups& g) {
  AwqTensors t;
  t.qweight = awq_pack_int4(g.q, g.in, g.out);
  t.qzeros = awq_pack_int4(g.zeros, g.in / g.group, g.out);
  t.scales.resize(g.scales.size());
  for (size_t i = 0; i < g.scales.size(); ++i) t.scales[i] = f32_to_fp16(g.scales[i]);
  return t;
}

/// Unpacks AutoAWQ tensors of a Linear [out, in] with `group` inputs per scale. `what` names the
/// layer in errors.
inline Int4Groups int4_groups_from_awq(const int32_t* qweight, const int32_t* qzeros, const uint16_t* scales,
                                       int64_t out, int64_t in, int64_t group) {
  check(out % 8 == 0 && in % group == 0, "AWQ tensors: out ", out, " must be a multiple of 8 and in ", in,
        " a multiple of the group size ", group);
  Int4Groups g;
  g.out = out;
  g.in = in;
  g.group = group;
  g.q = awq_unpack_int4(qweight, in, out);
  g.zeros = awq_unpack_int4(qzeros, in / group, out);
  g.scales.resize(static_cast<size_t>(in / group * out));
  for (size_t i = 0; i < g.scales.size(); ++i) g.scales[i] = fp16_to_f32(scales[i]);
  return g;
}

}  // namespace turbine::quant
