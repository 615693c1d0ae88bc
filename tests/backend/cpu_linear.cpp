// The CPU linear kernels (fused dot paths and the tiled GEMM path) against dequantize-then-multiply
// in double precision, for every storage format, fresh random inputs and poisoned outputs.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <functional>
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
  const unsigned seed = std::random_device{}();
  MESSAGE("seed ", seed);
  std::mt19937 rng(seed);
  const StorageType types[] = {StorageType::F32, StorageType::F16, StorageType::BF16, StorageType::Q8_0, StorageType::Q4_0,
                               StorageType::Q4_1, StorageType::Q5_0, StorageType::Q5_1, StorageType::Q4_K,
                               StorageType::Q5_K, StorageType::Q6_K, StorageType::I4G32, StorageType::I4G64,
                               StorageType::I4G128, StorageType::Q2_K, StorageType::Q3_K, StorageType::IQ4_NL,
                               StorageType::IQ4_XS};
  for (StorageType t : types) {
    const int64_t block = storage_info(t).block_elems;
    // 66 tokens: a 64-token product, then a last block of 2 on the fused path. Rows of 9 blocks of
    // 32: two of the 128-weight runs the AVX-512 nibble dot reads rearranged x for, and a block after.
    for (int64_t tokens : {1, 3, 4, 5, 37, 66}) {
      const int64_t rows = 67, cols = block == 1 ? 203 : block == 32 ? 32 * 9 : block * 3;
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

// linear() takes the widest dot form the build has; the narrower ones (the AVX2 forms, on an
// AVX-512 build) are what other machines run, so each is checked here directly.
TEST_CASE("every compiled dot form matches dequantize-then-dot") {
#ifdef TURBINE_CPU_AVX2
  const unsigned seed = std::random_device{}();
  MESSAGE("seed ", seed);
  std::mt19937 rng(seed);
  // A form gets the row, x and x as cpu::prepare_x leaves it (used by the rearranged-x forms).
  using Dot = std::function<float(const std::byte*, const float*, const float*, int64_t)>;
  struct Form {
    const char* name;
    StorageType type;
    Dot dot;
  };
  std::vector<Form> forms = {
      {"q4_0 avx2", StorageType::Q4_0, [](auto r, auto x, auto, int64_t n) { return cpu::detail::dot_q4_0(r, x, n); }},
      {"q4_1 avx2", StorageType::Q4_1, [](auto r, auto x, auto, int64_t n) { return cpu::detail::dot_q4_1(r, x, n); }},
      {"q8_0 avx2", StorageType::Q8_0, [](auto r, auto x, auto, int64_t n) { return cpu::detail::dot_q8_0(r, x, n); }},
      {"f16 avx2", StorageType::F16, [](auto r, auto x, auto, int64_t n) { return cpu::detail::dot_f16(r, x, n); }},
      {"bf16 avx2", StorageType::BF16, [](auto r, auto x, auto, int64_t n) { return cpu::detail::dot_bf16(r, x, n); }},
  };
  for (int g : {32, 64, 128})
    forms.push_back({"i4g avx2", int4_groups_type(g), [g](auto r, auto x, auto, int64_t n) { return cpu::detail::dot_i4g(r, x, n, g); }});
#ifdef TURBINE_CPU_AVX512
  MESSAGE("AVX-512 build: checking the AVX2 and AVX-512 forms");
  forms.push_back({"q4_0 avx512", StorageType::Q4_0, [](auto r, auto x, auto, int64_t n) { return cpu::detail::dot_q4_0_512(r, x, n); }});
  forms.push_back({"q4_1 avx512", StorageType::Q4_1, [](auto r, auto x, auto, int64_t n) { return cpu::detail::dot_q4_1_512(r, x, n); }});
  forms.push_back({"q8_0 avx512", StorageType::Q8_0, [](auto r, auto x, auto, int64_t n) { return cpu::detail::dot_q8_0_512(r, x, n); }});
  forms.push_back({"f16 avx512", StorageType::F16, [](auto r, auto x, auto, int64_t n) { return cpu::detail::dot_f16_512(r, x, n); }});
  forms.push_back({"bf16 avx512", StorageType::BF16, [](auto r, auto x, auto, int64_t n) { return cpu::detail::dot_bf16_512(r, x, n); }});
  forms.push_back({"q4_0 rearranged x", StorageType::Q4_0, [](auto r, auto x, auto p, int64_t n) { return cpu::detail::dot_nibbles<false>(r, x, p, n); }});
  forms.push_back({"q4_1 rearranged x", StorageType::Q4_1, [](auto r, auto x, auto p, int64_t n) { return cpu::detail::dot_nibbles<true>(r, x, p, n); }});
  for (int g : {32, 64, 128})
    forms.push_back({"i4g avx512", int4_groups_type(g), [g](auto r, auto x, auto, int64_t n) { return cpu::detail::dot_i4g_512(r, x, n, g); }});
  forms.push_back({"i4g32 rearranged x", StorageType::I4G32, [](auto r, auto x, auto p, int64_t n) { return cpu::detail::dot_i4g_runs<32>(r, x, p, n); }});
  forms.push_back({"i4g64 rearranged x", StorageType::I4G64, [](auto r, auto x, auto p, int64_t n) { return cpu::detail::dot_i4g_runs<64>(r, x, p, n); }});
  forms.push_back({"i4g128 rearranged x", StorageType::I4G128, [](auto r, auto x, auto p, int64_t n) { return cpu::detail::dot_i4g_runs<128>(r, x, p, n); }});
#else
  MESSAGE("AVX2 build: checking the AVX2 forms");
#endif
  for (const Form& f : forms) {
    CAPTURE(f.name);
    CAPTURE(storage_name(f.type));
    // 7 runs of 128 and a 64-weight tail (not for I4G128, whose rows are whole groups of 128).
    // Float formats: 30 iterations of 32 and a 13-element tail.
    const int64_t rows = 19, cols = f.type == StorageType::I4G128 ? 128 * 7
                                  : storage_info(f.type).block_elems == 1 ? 32 * 30 + 13 : 128 * 7 + 64;
    auto bytes = random_storage(f.type, rows, cols, rng);
    std::vector<float> x(cols), wrow(cols), got(rows, std::numeric_limits<float>::quiet_NaN());
    std::vector<float> prepared(static_cast<size_t>(std::max<int64_t>(1, cpu::prepared_x_floats(cols))),
                                std::numeric_limits<float>::quiet_NaN());
    std::normal_distribution<float> nd;
    for (auto& v : x) v = nd(rng);
    (void)cpu::prepare_x(f.type, x.data(), cols, prepared.data());
    std::vector<double> ref(rows);
    for (int64_t r = 0; r < rows; ++r) {
      const std::byte* row = bytes.data() + r * row_bytes(f.type, cols);
      got[r] = f.dot(row, x.data(), prepared.data(), cols);
      io::dequantize_row(f.type, row, wrow.data(), cols);
      for (int64_t c = 0; c < cols; ++c) ref[r] += double(wrow[c]) * x[c];
    }
    CHECK(relative_error(got, ref) < 1e-5);
  }
#else
  MESSAGE("[skipped] no AVX2 in this build: linear() uses dequantize-then-dot only");
#endif
}
