#pragma once
// A random 4-bit weight matrix for the W4A16 kernel tests (gemv_w4.cu, gemm_w4.cu): I4G rows made
// by the CPU's round-to-nearest, their dequantized fp16 values, and the GPU layout uploaded.
#include <cmath>
#include <random>
#include <vector>

#include <turbine/backend/cuda/gemv_w4.cuh>
#include <turbine/io/ggml_quants.hpp>
#include <turbine/quant/int4_groups.hpp>

#include "kernel_test_util.cuh"

namespace turbine::test {

/// One 4-bit weight matrix on the host and the device.
struct W4Case {
  std::vector<std::byte> rows;  ///< I4G rows (the CPU reference's weights)
  WeightMatrix host;            ///< a view of `rows`
  std::vector<float> w;         ///< [n, k] dequantized and rounded to fp16 as the GPU rounds them
  cuda::DeviceBuffer<uint32_t> qweight, params;
  cuda::W4Matrix dev;           ///< the device matrix (gemv_w4.cuh's layout)
};

/// Random weights of about +-2/sqrt(k), rounded to 4 bits in groups of `group` inputs.
inline W4Case make_w4(int n, int k, int group, std::mt19937& rng) {
  W4Case c;
  const float scale = 1.0f / std::sqrt(static_cast<float>(k));
  std::vector<float> w = random_floats(size_t(n) * k, rng, -2.f * scale, 2.f * scale);
  const quant::Int4Groups g = quant::rtn_quantize_int4(w.data(), n, k, group, quant::round_scale_fp16);
  c.rows = quant::int4_groups_to_rows(g);
  c.host = WeightMatrix{int4_groups_type(group), n, k, c.rows.data()};
  c.w.resize(size_t(n) * k);
  for (int r = 0; r < n; ++r) io::dequantize_row(c.host.type, c.host.row(r), c.w.data() + size_t(r) * k, k);
  c.w = round_to<__half>(c.w);  // (q - z) * s rounded once to fp16: w4_dequant8's value (gemv_w4.cu checks)
  const cuda::W4Host h = cuda::w4_pack(c.host);
  c.qweight = upload(h.qweight);
  c.params = upload(h.params);
  c.dev = cuda::W4Matrix{c.qweight.data(), reinterpret_cast<const __half2*>(c.params.data()), n, k, group};
  return c;
}

}  // namespace turbine::test
