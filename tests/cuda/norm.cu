// RMSNorm and the fused residual add + RMSNorm against turbine::cpu::rms_norm / add_inplace.
#include <doctest/doctest.h>

#include <turbine/backend/cpu/elementwise.hpp>
#include <turbine/backend/cuda/norm.cuh>

#include "kernel_test_util.cuh"
#include "test_support.hpp"

using namespace turbine;
using namespace turbine::test;

namespace {

constexpr float kEps = 1e-5f;
constexpr int kDims[] = {576, 2048, 4096};
constexpr int kTokens[] = {1, 3, 7, 8};

std::string label(const char* op, const char* type, int tokens, int dim) {
  return std::string(op) + " " + type + " tokens " + std::to_string(tokens) + " dim " + std::to_string(dim);
}

}  // namespace

TEST_CASE_TEMPLATE("rms_norm matches the CPU reference", T, __half, __nv_bfloat16) {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("rms_norm"));
  const char* tn = HalfTraits<T>::name;
  for (int dim : kDims) {
    for (int tokens : kTokens) {
      const size_t n = size_t(tokens) * dim;
      const auto gamma = random_half<T>(dim, rng, -1.5f, 1.5f);
      auto d_gamma = upload_half<T>(gamma);
      std::vector<float> ref(n);

      // T input.
      const auto x = random_half<T>(n, rng, -2.f, 2.f);
      auto d_x = upload_half<T>(x);
      cuda::DeviceBuffer<T> d_y(n);
      poison(d_y);
      cuda::rms_norm(d_x.data(), d_gamma.data(), d_y.data(), tokens, dim, kEps);
      sync_launch();
      cpu::rms_norm(x.values.data(), gamma.values.data(), tokens, dim, kEps, ref.data());
      expect_close(label("rms_norm(x T)", tn, tokens, dim), download_half(d_y), ref, HalfTraits<T>::tol);

      // In place (y aliases x).
      cuda::rms_norm(d_x.data(), d_gamma.data(), d_x.data(), tokens, dim, kEps);
      sync_launch();
      expect_close(label("rms_norm(x T, in place)", tn, tokens, dim), download_half(d_x), ref, HalfTraits<T>::tol);

      // fp32 residual input.
      const auto xf = random_floats(n, rng, -2.f, 2.f);
      auto d_xf = upload(xf);
      poison(d_y);
      cuda::rms_norm(d_xf.data(), d_gamma.data(), d_y.data(), tokens, dim, kEps);
      sync_launch();
      cpu::rms_norm(xf.data(), gamma.values.data(), tokens, dim, kEps, ref.data());
      expect_close(label("rms_norm(x f32)", tn, tokens, dim), download_half(d_y), ref, HalfTraits<T>::tol);
    }
  }
}

TEST_CASE_TEMPLATE("add_rms_norm adds the delta to the residual and normalizes in one pass", T, __half, __nv_bfloat16) {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("add_rms_norm"));
  const char* tn = HalfTraits<T>::name;
  for (int dim : kDims) {
    for (int tokens : kTokens) {
      const size_t n = size_t(tokens) * dim;
      const auto gamma = random_half<T>(dim, rng, -1.5f, 1.5f);
      const auto delta = random_half<T>(n, rng, -1.f, 1.f);
      auto d_gamma = upload_half<T>(gamma);
      auto d_delta = upload_half<T>(delta);
      std::vector<float> ref(n);

      // fp32 residual stream.
      auto res = random_floats(n, rng, -2.f, 2.f);
      auto d_res = upload(res);
      cuda::DeviceBuffer<T> d_y(n);
      poison(d_y);
      cuda::add_rms_norm(d_res.data(), d_delta.data(), d_gamma.data(), d_y.data(), tokens, dim, kEps);
      sync_launch();
      cpu::add_inplace(res.data(), delta.values.data(), static_cast<int64_t>(n));
      cpu::rms_norm(res.data(), gamma.values.data(), tokens, dim, kEps, ref.data());
      expect_close(label("add_rms_norm(res f32) y", tn, tokens, dim), download_half(d_y), ref, HalfTraits<T>::tol);
      expect_close(label("add_rms_norm(res f32) residual", tn, tokens, dim), download(d_res), res, 1e-6);

      // T residual stream.
      const auto rh = random_half<T>(n, rng, -2.f, 2.f);
      auto d_rh = upload_half<T>(rh);
      poison(d_y);
      cuda::add_rms_norm(d_rh.data(), d_delta.data(), d_gamma.data(), d_y.data(), tokens, dim, kEps);
      sync_launch();
      std::vector<float> sum = rh.values;
      cpu::add_inplace(sum.data(), delta.values.data(), static_cast<int64_t>(n));
      cpu::rms_norm(sum.data(), gamma.values.data(), tokens, dim, kEps, ref.data());
      expect_close(label("add_rms_norm(res T) y", tn, tokens, dim), download_half(d_y), ref, HalfTraits<T>::tol);
      expect_close(label("add_rms_norm(res T) residual", tn, tokens, dim), download_half(d_rh), sum,
                   HalfTraits<T>::tol);
    }
  }
}

TEST_CASE("rms_norm names the supported sizes") {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  cuda::DeviceBuffer<__half> buf(64);
  CHECK_THROWS_WITH_AS(cuda::rms_norm(buf.data(), buf.data(), buf.data(), 1, 12, kEps),
                       doctest::Contains("multiples of 8 up to 16384"), turbine::Error);
  CHECK_THROWS_WITH_AS(cuda::rms_norm(buf.data(), buf.data(), buf.data(), 1, 32768, kEps),
                       doctest::Contains("hidden size 32768"), turbine::Error);
}
