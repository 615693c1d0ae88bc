// Embedding gather against turbine::cpu::embedding (F16/BF16 tables), into fp32 and T outputs.
#include <doctest/doctest.h>

#include <turbine/backend/cpu/linear.hpp>
#include <turbine/backend/cuda/embedding.cuh>

#include "kernel_test_util.cuh"
#include "test_support.hpp"

using namespace turbine;
using namespace turbine::test;

TEST_CASE_TEMPLATE("embedding gathers table rows", T, __half, __nv_bfloat16) {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  std::mt19937 rng(fresh_seed("embedding"));
  const char* tn = HalfTraits<T>::name;
  const StorageType st = std::same_as<T, __half> ? StorageType::F16 : StorageType::BF16;
  constexpr int kVocab = 1001;
  for (int hidden : {576, 2048, 4096}) {
    const auto table = random_half<T>(size_t(kVocab) * hidden, rng);
    auto d_table = upload_half<T>(table);
    const WeightMatrix w{st, kVocab, hidden, reinterpret_cast<const std::byte*>(table.bits.data())};
    for (int tokens : {1, 3, 7, 8, 300}) {
      std::uniform_int_distribution<int32_t> pick(0, kVocab - 1);
      std::vector<int32_t> ids(tokens);
      for (auto& id : ids) id = pick(rng);
      ids[0] = kVocab - 1;  // the last row too
      cuda::check_token_ids(ids.data(), tokens, kVocab);
      auto d_ids = upload(ids);
      std::vector<float> ref(size_t(tokens) * hidden);
      cpu::embedding(w, ids.data(), tokens, ref.data());
      const std::string what =
          std::string(tn) + " tokens " + std::to_string(tokens) + " hidden " + std::to_string(hidden);

      cuda::DeviceBuffer<float> d_outf(ref.size());
      poison(d_outf);
      cuda::embedding(d_table.data(), d_ids.data(), d_outf.data(), tokens, hidden, kVocab);
      sync_launch();
      expect_close("embedding -> f32 " + what, download(d_outf), ref, 1e-7);

      cuda::DeviceBuffer<T> d_outh(ref.size());
      poison(d_outh);
      cuda::embedding(d_table.data(), d_ids.data(), d_outh.data(), tokens, hidden, kVocab);
      sync_launch();
      expect_close("embedding -> T " + what, download_half(d_outh), ref, 1e-7);
    }
  }
}

TEST_CASE("embedding: bad ids are refused on the host and never read out of bounds on the device") {
  if (cuda::device_count() == 0) return skip("no CUDA device on this machine");
  const std::vector<int32_t> bad = {5, 1000, -1};
  CHECK_THROWS_WITH_AS(cuda::check_token_ids(bad.data(), 3, 1000),
                       doctest::Contains("token id 1000 at position 1 is outside the vocabulary of 1000"),
                       turbine::Error);
  constexpr int kHidden = 64;
  cuda::DeviceBuffer<__half> table(1000 * kHidden);
  TURBINE_CUDA_CHECK(cudaMemset(table.data(), 0, table.bytes()));
  auto d_ids = upload(bad);
  cuda::DeviceBuffer<float> out(3 * kHidden);
  TURBINE_CUDA_CHECK(cudaMemset(out.data(), 0, out.bytes()));
  cuda::embedding(table.data(), d_ids.data(), out.data(), 3, kHidden, 1000);
  sync_launch();
  const auto h = download(out);
  for (int i = 0; i < kHidden; ++i) {
    CHECK(h[i] == 0.f);
    CHECK(std::isnan(h[kHidden + i]));
    CHECK(std::isnan(h[2 * kHidden + i]));
  }
  cuda::DeviceBuffer<float> odd(3 * 12);
  CHECK_THROWS_WITH_AS(cuda::embedding(table.data(), d_ids.data(), odd.data(), 3, 12, 1000),
                       doctest::Contains("supported: multiples of 8"), turbine::Error);
}
