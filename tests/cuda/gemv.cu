// Decode GEMV (1..8 tokens) against turbine::cpu::linear on the same F16/BF16 weights.
#include <doctest/doctest.h>

#include <turbine/backend/cpu/linear.hpp>
#include <turbine/backend/cuda/gemv.cuh>

#include "kernel_test_util.cuh"
#include "test_support.hpp"

using namespace turbine;
using namespace turbine::test;

namespace {

template <class T>
StorageType storage_of() {
  return std::same_as<T, __half> ? StorageType::F16 : StorageType::BF16;
}

}  // namespace

TEST_CASE_TEMPLATE("gemv matches the CPU linear for 1..8 tokens", T, __half, __nv_bfloat16) {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("gemv"));
  const char* tn = HalfTraits<T>::name;
  // k: the model sizes and two that are multiples of 8 but not of 32 (partial mma chunks);
  // n: not multiples of the 16 rows a block computes.
  for (int k : {576, 1536, 4096, 14336, 200, 584}) {
    for (int n : {1000, 4100, 9}) {
      const float scale = 1.0f / std::sqrt(static_cast<float>(k));
      const auto w = random_half<T>(size_t(n) * k, rng, -2.f * scale, 2.f * scale);
      auto d_w = upload_half<T>(w);
      const WeightMatrix wm{storage_of<T>(), n, k, reinterpret_cast<const std::byte*>(w.bits.data())};
      const auto bias = random_half<T>(n, rng);
      auto d_bias = upload_half<T>(bias);
      for (int tokens : {1, 2, 3, 5, 7, 8}) {
        for (bool with_bias : {false, true}) {
          const auto x = random_half<T>(size_t(tokens) * k, rng);
          auto d_x = upload_half<T>(x);
          cuda::DeviceBuffer<T> d_y(size_t(tokens) * n);
          poison(d_y);
          cuda::gemv(d_w.data(), d_x.data(), with_bias ? d_bias.data() : nullptr, d_y.data(), tokens, n, k);
          sync_launch();
          std::vector<float> ref(size_t(tokens) * n);
          cpu::linear(wm, x.values.data(), tokens, ref.data(), with_bias ? bias.values.data() : nullptr);
          expect_close(std::string("gemv ") + tn + " tokens " + std::to_string(tokens) + " n " + std::to_string(n) +
                           " k " + std::to_string(k) + (with_bias ? " bias" : ""),
                       download_half(d_y), ref, HalfTraits<T>::tol);
        }
      }
    }
  }
}

TEST_CASE("gemv names the supported sizes") {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  cuda::DeviceBuffer<__half> buf(1024);
  CHECK_THROWS_WITH_AS(cuda::gemv(buf.data(), buf.data(), static_cast<const __half*>(nullptr), buf.data(), 1, 4, 12),
                       doctest::Contains("k must be a multiple of 8"), turbine::Error);
  CHECK_THROWS_WITH_AS(cuda::gemv(buf.data(), buf.data(), static_cast<const __half*>(nullptr), buf.data(), 9, 4, 16),
                       doctest::Contains("supported: 1 to 8"), turbine::Error);
}
