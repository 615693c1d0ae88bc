// W4A16 decode GEMV (backend/cuda/gemv_w4.cuh) against turbine::cpu::linear on the same 4-bit
// weights (I4G rows, the CPU's fused int4 dot), fresh random weights and activations, poisoned
// outputs, every launch configuration, sizes that are not multiples of the 16-row block or of the
// 128-input chunk, every group size; and its size checks.
#include <doctest/doctest.h>

#include <turbine/backend/cpu/linear.hpp>
#include <turbine/backend/cuda/gemv_w4.cuh>
#include <turbine/quant/int4_groups.hpp>

#include "kernel_test_util.cuh"
#include "test_support.hpp"

using namespace turbine;
using namespace turbine::test;

namespace {

struct W4Case {
  std::vector<std::byte> rows;  // I4G rows (the CPU reference's weights)
  WeightMatrix host;
  cuda::DeviceBuffer<uint32_t> qweight, params;
  cuda::W4Matrix dev;
};

W4Case make_w4(int n, int k, int group, std::mt19937& rng) {
  W4Case c;
  const float scale = 1.0f / std::sqrt(static_cast<float>(k));
  std::vector<float> w = random_floats(size_t(n) * k, rng, -2.f * scale, 2.f * scale);
  const quant::Int4Groups g = quant::rtn_quantize_int4(w.data(), n, k, group, quant::round_scale_fp16);
  c.rows = quant::int4_groups_to_rows(g);
  c.host = WeightMatrix{int4_groups_type(group), n, k, c.rows.data()};
  const cuda::W4Host h = cuda::w4_pack(c.host);
  c.qweight = upload(h.qweight);
  c.params = upload(h.params);
  c.dev = cuda::W4Matrix{c.qweight.data(), reinterpret_cast<const __half2*>(c.params.data()), n, k, group};
  return c;
}

}  // namespace

TEST_CASE("gemv_w4 matches the CPU int4 linear for 1..8 tokens, every group size and launch configuration") {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("gemv_w4"));
  struct Shape {
    int n, k, group;
  };
  // k: SmolLM2 (576, 1536), Llama (4096, 14336), each launch configuration (2, 4, 8 warps), and k not
  // a multiple of 128 (lanes past k in the last chunk); n: not multiples of 16.
  const Shape shapes[] = {{960, 576, 64}, {3072, 576, 64}, {576, 1536, 64}, {1000, 4096, 128}, {9, 4096, 128},
                          {4100, 14336, 128}, {200, 96, 32}, {64, 160, 32}, {136, 1184, 32}, {520, 2112, 64}};
  for (const Shape& s : shapes) {
    W4Case w = make_w4(s.n, s.k, s.group, rng);
    const auto bias = random_half<__half>(s.n, rng);
    auto d_bias = upload_half<__half>(bias);
    for (int tokens : {1, 2, 5, 8}) {
      for (bool with_bias : {false, true}) {
        const auto x = random_half<__half>(size_t(tokens) * s.k, rng);
        auto d_x = upload_half<__half>(x);
        cuda::DeviceBuffer<__half> d_y(size_t(tokens) * s.n);
        poison(d_y);
        cuda::gemv_w4(w.dev, d_x.data(), with_bias ? d_bias.data() : nullptr, d_y.data(), tokens);
        sync_launch();
        std::vector<float> ref(size_t(tokens) * s.n);
        cpu::linear(w.host, x.values.data(), tokens, ref.data(), with_bias ? bias.values.data() : nullptr);
        expect_close("gemv_w4 tokens " + std::to_string(tokens) + " n " + std::to_string(s.n) + " k " +
                         std::to_string(s.k) + " g" + std::to_string(s.group) + (with_bias ? " bias" : ""),
                     download_half(d_y), ref, HalfTraits<__half>::tol);
      }
    }
  }
}

TEST_CASE("gemv_w4 names the supported sizes; w4_pack refuses weights that are not 4-bit") {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("gemv_w4 sizes"));
  W4Case w = make_w4(32, 256, 64, rng);
  cuda::DeviceBuffer<__half> x(9 * 256), y(9 * 32);
  CHECK_THROWS_WITH_AS(cuda::gemv_w4(w.dev, x.data(), nullptr, y.data(), 9), doctest::Contains("9 tokens is not supported"),
                       Error);
  cuda::W4Matrix bad = w.dev;
  bad.group = 48;
  CHECK_THROWS_WITH_AS(cuda::gemv_w4(bad, x.data(), nullptr, y.data(), 1), doctest::Contains("bad sizes"), Error);
  const std::vector<float> f(64 * 32, 1.0f);
  const WeightMatrix plain{StorageType::F32, 32, 64, reinterpret_cast<const std::byte*>(f.data())};
  CHECK_THROWS_WITH_AS(cuda::w4_pack(plain), doctest::Contains("not group-wise 4-bit"), Error);
}

TEST_CASE("w4_dequantize gives the fp16 weights the CPU dequantizer gives, bit for bit") {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("w4_dequantize"));
  for (int group : {32, 64, 128}) {
    const int n = 37, k = 3 * group + 128;
    W4Case w = make_w4(n, k - (k % group), group, rng);
    const int kk = w.dev.k;
    cuda::DeviceBuffer<__half> d_out(size_t(n) * kk);
    poison(d_out);
    cuda::w4_dequantize(w.dev, d_out.data());
    sync_launch();
    const auto got = download_half(d_out);
    std::vector<float> row(static_cast<size_t>(kk));
    int64_t mismatches = 0;
    for (int r = 0; r < n; ++r) {
      io::dequantize_row(w.host.type, w.host.row(r), row.data(), kk);
      for (int i = 0; i < kk; ++i) mismatches += got[size_t(r) * kk + i] != round_to<__half>({row[size_t(i)]})[0];
    }
    CAPTURE(group);
    CHECK(mismatches == 0);
  }
}
