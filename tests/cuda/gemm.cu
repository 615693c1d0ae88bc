// cuBLASLt GEMM wrapper and linear() (GEMV for m <= 8, GEMM above) against turbine::cpu::linear.
#include <doctest/doctest.h>

#include <turbine/backend/cpu/linear.hpp>
#include <turbine/backend/cuda/gemm.cuh>

#include "kernel_test_util.cuh"
#include "test_support.hpp"

using namespace turbine;
using namespace turbine::test;

TEST_CASE_TEMPLATE("Gemm and linear match the CPU linear", T, __half, __nv_bfloat16) {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("gemm"));
  const char* tn = HalfTraits<T>::name;
  const StorageType st = std::same_as<T, __half> ? StorageType::F16 : StorageType::BF16;
  cuda::Gemm gemm;
  for (int k : {576, 1536, 4096}) {
    for (int n : {1000, 2048}) {
      const float scale = 1.0f / std::sqrt(static_cast<float>(k));
      const auto w = random_half<T>(size_t(n) * k, rng, -2.f * scale, 2.f * scale);
      auto d_w = upload_half<T>(w);
      const WeightMatrix wm{st, n, k, reinterpret_cast<const std::byte*>(w.bits.data())};
      const auto bias = random_half<T>(n, rng);
      auto d_bias = upload_half<T>(bias);
      for (int m : {1, 7, 8, 9, 64, 257}) {
        for (bool with_bias : {false, true}) {
          const auto x = random_half<T>(size_t(m) * k, rng);
          auto d_x = upload_half<T>(x);
          std::vector<float> ref(size_t(m) * n);
          cpu::linear(wm, x.values.data(), m, ref.data(), with_bias ? bias.values.data() : nullptr);
          const std::string what = std::string(tn) + " m " + std::to_string(m) + " n " + std::to_string(n) + " k " +
                                   std::to_string(k) + (with_bias ? " bias" : "");
          const T* b = with_bias ? d_bias.data() : nullptr;
          cuda::DeviceBuffer<T> d_y(size_t(m) * n);
          poison(d_y);
          gemm(d_x.data(), d_w.data(), b, d_y.data(), m, n, k);
          sync_launch();
          expect_close("cublasLt " + what, download_half(d_y), ref, HalfTraits<T>::tol);
          poison(d_y);
          cuda::linear(gemm, d_x.data(), d_w.data(), b, d_y.data(), m, n, k);
          sync_launch();
          expect_close(std::string(m <= cuda::kGemvMaxTokens ? "linear(gemv) " : "linear(gemm) ") + what,
                       download_half(d_y), ref, HalfTraits<T>::tol);
        }
      }
    }
  }
  // Each (shape, bias, alignment) ran the heuristic once; repeats hit the cache.
  const size_t planned = gemm.planned_shapes();
  CHECK(planned > 0);
  {
    cuda::DeviceBuffer<T> a(64 * 576), wbuf(1000 * 576), y(64 * 1000);
    poison(y);
    TURBINE_CUDA_CHECK(cudaMemset(a.data(), 0, a.bytes()));
    TURBINE_CUDA_CHECK(cudaMemset(wbuf.data(), 0, wbuf.bytes()));
    gemm(a.data(), wbuf.data(), static_cast<const T*>(nullptr), y.data(), 64, 1000, 576);
    sync_launch();
  }
  CHECK(gemm.planned_shapes() == planned);
}

TEST_CASE("Gemm names the supported sizes") {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  cuda::Gemm gemm(1 << 20);
  cuda::DeviceBuffer<__half> buf(4096);
  CHECK_THROWS_WITH_AS(gemm(buf.data(), buf.data(), static_cast<const __half*>(nullptr), buf.data(), 16, 8, 12),
                       doctest::Contains("both must be multiples of 8"), turbine::Error);
}
