// The CPU linear kernels (fused dot paths and the tiled GEMM path) against dequantize-then-multiply
// in double precision, for every storage format, fresh random inputs and poisoned outputs.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <turbine/backend/cpu/linear.hpp>
#include <turbine/core/half.hpp>

using namespace turbine;

namespace {

/// Random valid storage for `rows` x `cols`: random bytes with each block's scales set to small
/// random finite fp16 values (K-quant super-block scales too), floats drawn uniformly.
std::vector<std::byte> random_storage(StorageType t, int64_t rows, int64_t cols, std::mt19937& rng) {
  std::vector<std::byte> w(row_bytes(t, cols) * rows);
  for (auto& b : w) b = std::byte(rng() & 0xff);
  std::uniform_real_distribution<float> u(-1.f, 1.f), scale(0.001f, 0.05f);
  auto put_half = [&](size_t at, float v) { const uint16_t h = f32_to_fp16(v); std::memcpy(&w[at], &h, 2); };
  const auto info = storage_info(t);
  const size_t n_blocks = w.size() / info.block_bytes;
  switch (t) {
    case StorageType::F32:
      for (size_t i = 0; i < w.size() / 4; ++i) { const float f = u(rng); std::memcpy(&w[4 * i], &f, 4); }
      break;
    case StorageType::F16:
      for (size_t i = 0; i < w.size() / 2; ++i) put_half(2 * i, u(rng));
      break;
    case StorageType::BF16:
      for (size_t i = 0; i < w.size() / 2; ++i) { const uint16_t h = f32_to_bf16(u(rng)); std::memcpy(&w[2 * i], &h, 2); }
      break;
    case StorageType::Q4_1: case StorageType::Q5_1:
      for (size_t b = 0; b < n_blocks; ++b) { put_half(b * info.block_bytes, scale(rng)); put_half(b * info.block_bytes + 2, -scale(rng)); }
      break;
    case StorageType::Q4_0: case StorageType::Q5_0: case StorageType::Q8_0:
      for (size_t b = 0; b < n_blocks; ++b) put_half(b * info.block_bytes, scale(rng));
      break;
    case StorageType::Q4_K: case StorageType::Q5_K:  // d and dmin lead the block
      for (size_t b = 0; b < n_blocks; ++b) { put_half(b * info.block_bytes, scale(rng)); put_half(b * info.block_bytes + 2, scale(rng)); }
      break;
    case StorageType::Q6_K:  // d trails the block
      for (size_t b = 0; b < n_blocks; ++b) put_half(b * info.block_bytes + 208, scale(rng));
      break;
    case StorageType::I4G32: case StorageType::I4G64: case StorageType::I4G128:  // scale leads, zero in byte 2
    case StorageType::IQ4_NL: case StorageType::IQ4_XS:  // d leads
      for (size_t b = 0; b < n_blocks; ++b) put_half(b * info.block_bytes, scale(rng));
      break;
    case StorageType::Q2_K:  // d and dmin trail the block
      for (size_t b = 0; b < n_blocks; ++b) { put_half(b * info.block_bytes + 80, scale(rng)); put_half(b * info.block_bytes + 82, scale(rng)); }
      break;
    case StorageType::Q3_K:  // d trails the block
      for (size_t b = 0; b < n_blocks; ++b) put_half(b * info.block_bytes + 108, scale(rng));
      break;
  }
  return w;
}

double relative_error(const std::vector<float>& got, const std::vector<double>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) return std::numeric_limits<double>::infinity();
    num += (got[i] - want[i]) * (got[i] - want[i]);
    den += want[i] * want[i];
  }
  return std::sqrt(num / den);
}

}  // namespace

TEST_CASE("linear matches a double-precision reference for every format, token count and odd size") {
  std::mt19937 rng(std::random_device{}());
  const StorageType types[] = {StorageType::F32, StorageType::F16, StorageType::BF16, StorageType::Q8_0, StorageType::Q4_0,
                               StorageType::Q4_1, StorageType::Q5_0, StorageType::Q5_1, StorageType::Q4_K,
                               StorageType::Q5_K, StorageType::Q6_K, StorageType::I4G32, StorageType::I4G64,
                               StorageType::I4G128, StorageType::Q2_K, StorageType::Q3_K, StorageType::IQ4_NL,
                               StorageType::IQ4_XS};
  for (StorageType t : types) {
    const int64_t block = storage_info(t).block_elems;
    for (int64_t tokens : {1, 3, 4, 5, 37}) {
      const int64_t rows = 67, cols = block == 1 ? 203 : block * 3;
      CAPTURE(storage_name(t));
      CAPTURE(tokens);
      auto bytes = random_storage(t, rows, cols, rng);
      WeightMatrix w{t, rows, cols, bytes.data()};
      std::vector<float> x(tokens * cols), bias(rows);
      std::normal_distribution<float> nd;
      for (auto& v : x) v = nd(rng);
      for (auto& v : bias) v = nd(rng);
      std::vector<float> y(tokens * rows, std::numeric_limits<float>::quiet_NaN());  // poisoned
      cpu::linear(w, x.data(), tokens, y.data(), bias.data());
      std::vector<float> wrow(cols);
      std::vector<double> ref(tokens * rows);
      for (int64_t r = 0; r < rows; ++r) {
        io::dequantize_row(t, w.row(r), wrow.data(), cols);
        for (int64_t k = 0; k < tokens; ++k) {
          double s = bias[r];
          for (int64_t c = 0; c < cols; ++c) s += double(wrow[c]) * x[k * cols + c];
          ref[k * rows + r] = s;
        }
      }
      CHECK(relative_error(y, ref) < 1e-5);
    }
  }
}

TEST_CASE("embedding rejects ids outside the vocabulary") {
  std::vector<float> table(4 * 8, 1.0f);
  WeightMatrix w{StorageType::F32, 4, 8, reinterpret_cast<const std::byte*>(table.data())};
  std::vector<float> out(8);
  const int32_t bad = 4;
  CHECK_THROWS_AS(cpu::embedding(w, &bad, 1, out.data()), Error);
}
