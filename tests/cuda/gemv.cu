// Decode GEMV (1..8 tokens) against turbine::cpu::linear on the same F16/BF16 weights, alone and in
// unsynchronized chains (programmatic dependent launch must still order them).
#include <doctest/doctest.h>

#include <turbine/backend/cpu/elementwise.hpp>
#include <turbine/backend/cpu/linear.hpp>
#include <turbine/backend/cuda/gemv.cuh>
#include <turbine/backend/cuda/norm.cuh>

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
  // k: the model sizes, each launch configuration (2, 4 and 8 warps; 4 and 8 chunks per step), and
  // multiples of 8 that are not multiples of 32 (partial mma chunks); n: not multiples of the 16 rows
  // a block computes.
  for (int k : {576, 1536, 2048, 4096, 14336, 200, 584, 3000, 4104}) {
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

TEST_CASE_TEMPLATE("back-to-back kernels on one stream see their predecessors' outputs (PDL)", T, __half,
                   __nv_bfloat16) {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("gemv chain"));
  const char* tn = HalfTraits<T>::name;
  constexpr int kDim = 4096;
  constexpr int kLayers = 4;  // norm -> gemv -> gemv -> ... with no synchronization in between
  const float scale = 2.0f / std::sqrt(static_cast<float>(kDim));
  std::vector<HalfHost> w;
  std::vector<cuda::DeviceBuffer<T>> d_w;
  for (int l = 0; l < kLayers; ++l) {
    w.push_back(random_half<T>(size_t(kDim) * kDim, rng, -scale, scale));
    d_w.push_back(upload_half<T>(w.back()));
  }
  const auto gamma = random_half<T>(kDim, rng, 0.5f, 1.5f);
  auto d_gamma = upload_half<T>(gamma);
  cudaStream_t stream;
  TURBINE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  for (int tokens : {1, 3, 8}) {
    const auto x = random_half<T>(size_t(tokens) * kDim, rng, -2.f, 2.f);
    auto d_x = upload_half<T>(x);
    std::vector<cuda::DeviceBuffer<T>> act;
    for (int l = 0; l <= kLayers; ++l) {
      act.emplace_back(size_t(tokens) * kDim);
      poison(act.back());
    }
    cuda::rms_norm(d_x.data(), d_gamma.data(), act[0].data(), tokens, kDim, 1e-5f, stream);
    TURBINE_CUDA_CHECK(cudaGetLastError());
    for (int l = 0; l < kLayers; ++l) {
      cuda::gemv(d_w[l].data(), act[l].data(), static_cast<const T*>(nullptr), act[l + 1].data(), tokens, kDim, kDim,
                 stream);
      TURBINE_CUDA_CHECK(cudaGetLastError());
    }
    TURBINE_CUDA_CHECK(cudaStreamSynchronize(stream));
    // Reference: each stage from the device's previous stage output (rounded as stored).
    std::vector<float> ref(size_t(tokens) * kDim);
    cpu::rms_norm(x.values.data(), gamma.values.data(), tokens, kDim, 1e-5f, ref.data());
    expect_close(std::string("chain ") + tn + " tokens " + std::to_string(tokens) + " norm", download_half(act[0]), ref,
                 HalfTraits<T>::tol);
    for (int l = 0; l < kLayers; ++l) {
      const std::vector<float> in = download_half(act[l]);
      const WeightMatrix wm{std::same_as<T, __half> ? StorageType::F16 : StorageType::BF16, kDim, kDim,
                            reinterpret_cast<const std::byte*>(w[l].bits.data())};
      cpu::linear(wm, in.data(), tokens, ref.data());
      expect_close(std::string("chain ") + tn + " tokens " + std::to_string(tokens) + " gemv " + std::to_string(l),
                   download_half(act[l + 1]), ref, HalfTraits<T>::tol);
    }
  }
  TURBINE_CUDA_CHECK(cudaStreamDestroy(stream));
}
