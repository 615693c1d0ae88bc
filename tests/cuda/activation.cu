// Gated activations (fused gate_up layout and separate buffers) against turbine::cpu::silu_mul /
// gelu_mul.
#include <doctest/doctest.h>

#include <turbine/backend/cpu/elementwise.hpp>
#include <turbine/backend/cuda/activation.cuh>

#include "kernel_test_util.cuh"
#include "test_support.hpp"

using namespace turbine;
using namespace turbine::test;

TEST_CASE_TEMPLATE("silu(gate) * up matches the CPU reference in both layouts", T, __half, __nv_bfloat16) {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("silu_mul"));
  const char* tn = HalfTraits<T>::name;
  for (int inter : {576, 1536, 14336}) {
    for (int tokens : {1, 3, 7, 8, 33}) {
      const size_t n = size_t(tokens) * inter;
      const std::string what =
          std::string(tn) + " tokens " + std::to_string(tokens) + " inter " + std::to_string(inter);
      // Fused: [tokens, 2 * inter], gate half then up half per row.
      const auto gu = random_half<T>(2 * n, rng, -6.f, 6.f);
      auto d_gu = upload_half<T>(gu);
      std::vector<float> gate(n), up(n), ref(n);
      for (int t = 0; t < tokens; ++t)
        for (int i = 0; i < inter; ++i) {
          gate[size_t(t) * inter + i] = gu.values[size_t(t) * 2 * inter + i];
          up[size_t(t) * inter + i] = gu.values[size_t(t) * 2 * inter + inter + i];
        }
      cpu::silu_mul(gate.data(), up.data(), static_cast<int64_t>(n), ref.data());
      cuda::DeviceBuffer<T> d_out(n);
      poison(d_out);
      cuda::silu_mul_fused(d_gu.data(), d_out.data(), tokens, inter);
      sync_launch();
      expect_close("silu_mul_fused " + what, download_half(d_out), ref, HalfTraits<T>::tol);

      // Separate buffers.
      const auto g2 = random_half<T>(n, rng, -6.f, 6.f), u2 = random_half<T>(n, rng, -6.f, 6.f);
      auto d_g2 = upload_half<T>(g2);
      auto d_u2 = upload_half<T>(u2);
      cpu::silu_mul(g2.values.data(), u2.values.data(), static_cast<int64_t>(n), ref.data());
      poison(d_out);
      cuda::silu_mul(d_g2.data(), d_u2.data(), d_out.data(), tokens, inter);
      sync_launch();
      expect_close("silu_mul " + what, download_half(d_out), ref, HalfTraits<T>::tol);

      // GELU (tanh) variant, same kernel.
      cpu::gelu_mul(g2.values.data(), u2.values.data(), static_cast<int64_t>(n), ref.data());
      poison(d_out);
      cuda::gated_activation<cuda::Activation::GeluTanh>(d_g2.data(), inter, d_u2.data(), inter, d_out.data(), inter,
                                                         tokens, inter);
      sync_launch();
      expect_close("gelu_mul " + what, download_half(d_out), ref, HalfTraits<T>::tol);
    }
  }
}

TEST_CASE("silu_mul names the supported sizes") {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  cuda::DeviceBuffer<__half> buf(64);
  CHECK_THROWS_WITH_AS(cuda::silu_mul_fused(buf.data(), buf.data(), 1, 12),
                       doctest::Contains("intermediate size 12 is not supported (supported: multiples of 8)"),
                       turbine::Error);
}
