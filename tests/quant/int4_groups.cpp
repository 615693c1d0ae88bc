// Group-wise 4-bit weights: AutoAWQ's "gemm" packing order (known integers packed by hand, random
// round trips, malformed sizes) and round-to-nearest quantization by AutoAWQ's rules.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <turbine/io/ggml_quants.hpp>
#include <turbine/quant/int4_groups.hpp>
#include <turbine/quant/schemes.hpp>

using namespace turbine;
using namespace turbine::quant;

TEST_CASE("AutoAWQ packing: nibble k of a word holds column order[k] = 0, 2, 4, 6, 1, 3, 5, 7") {
  // Row 0: column c holds c + 1. The packer writes nibbles (low to high) from columns
  // 0, 2, 4, 6, 1, 3, 5, 7, i.e. the values 1, 3, 5, 7, 2, 4, 6, 8: the word 0x86427531.
  // Row 1: column 3 holds 15 and the rest 0: nibble 5 (column 3), the word 0x00F00000.
  std::vector<uint8_t> v(16, 0);
  for (int c = 0; c < 8; ++c) v[c] = static_cast<uint8_t>(c + 1);
  v[8 + 3] = 15;
  const auto packed = awq_pack_int4(v, 2, 8);
  REQUIRE(packed.size() == 2);
  CHECK(static_cast<uint32_t>(packed[0]) == 0x86427531u);
  CHECK(static_cast<uint32_t>(packed[1]) == 0x00F00000u);
  // Unpacking words written by someone else (AutoAWQ's layout, not our packer): 0x76543210 has
  // nibble k = k, so column kAwqOrder[k] = k: columns 0..7 hold 0, 4, 1, 5, 2, 6, 3, 7.
  const int32_t foreign[1] = {0x76543210};
  const auto u = awq_unpack_int4(foreign, 1, 8);
  const std::vector<uint8_t> want{0, 4, 1, 5, 2, 6, 3, 7};
  CHECK(u == want);
}

TEST_CASE("AutoAWQ packing round-trips random values and refuses bad sizes") {
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> nib(0, 15);
  const int64_t rows = 37, cols = 48;
  std::vector<uint8_t> v(static_cast<size_t>(rows * cols));
  for (auto& x : v) x = static_cast<uint8_t>(nib(rng));
  const auto packed = awq_pack_int4(v, rows, cols);
  CHECK(packed.size() == static_cast<size_t>(rows * cols / 8));
  CHECK(awq_unpack_int4(packed.data(), rows, cols) == v);
  CHECK_THROWS_WITH_AS(awq_pack_int4(std::vector<uint8_t>(12), 1, 12), doctest::Contains("multiple of 8"), Error);
  std::vector<uint8_t> big(8, 0);
  big[5] = 16;
  CHECK_THROWS_WITH_AS(awq_pack_int4(big, 1, 8), doctest::Contains("does not fit 4 bits"), Error);
}

TEST_CASE("round-to-nearest quantization follows AutoAWQ's rules") {
  // One group [-1, 2]: scale 3 / 15 = 0.2, zero = -round(-1 / 0.2) = 5; w = 0.5 -> round(0.5 / 0.2f
  // = 2.4999999) + 5 = 7; w = 2 -> 10 + 5 = 15; w = -1 -> 0; w = 0 -> 5.
  std::vector<float> w(8, 0.0f);
  w[0] = -1.0f, w[1] = 2.0f, w[2] = 0.5f, w[3] = 0.0f;
  const Int4Groups q = rtn_quantize_int4(w.data(), 1, 8, 8);
  CHECK(q.scales[0] == doctest::Approx(0.2f));
  CHECK(int(q.zeros[0]) == 5);
  CHECK(int(q.q[0]) == 0);
  CHECK(int(q.q[1]) == 15);
  CHECK(int(q.q[2]) == 7);
  CHECK(int(q.q[3]) == 5);
  CHECK(q.weight(0, 1) == doctest::Approx(2.0f));

  // Random [out, in] with groups of 32: every weight within half a step of its group's scale,
  // and every stored value in range.
  std::mt19937 rng(std::random_device{}());
  std::normal_distribution<float> nd(0.0f, 0.05f);
  const int64_t out = 24, in = 96, group = 32;
  std::vector<float> m(static_cast<size_t>(out * in));
  for (auto& x : m) x = nd(rng);
  const Int4Groups r = rtn_quantize_int4(m.data(), out, in, group);
  const auto back = r.dequantize();
  double err = 0, ref = 0;
  for (int64_t j = 0; j < out; ++j)
    for (int64_t i = 0; i < in; ++i) {
      const float s = r.scales[(i / group) * out + j];
      REQUIRE(std::fabs(back[j * in + i] - m[j * in + i]) <= 0.5f * s + 1e-6f);
      err += std::pow(back[j * in + i] - m[j * in + i], 2);
      ref += std::pow(m[j * in + i], 2);
    }
  for (uint8_t x : r.q) REQUIRE(x < 16);
  for (uint8_t z : r.zeros) REQUIRE(z < 16);
  MESSAGE("RTN 4-bit, group 32, relative error ", std::sqrt(err / ref));
  CHECK(std::sqrt(err / ref) < 0.15);  // 4 bits over a group's range: about 0.1 for Gaussian weights
  CHECK_THROWS_WITH_AS(rtn_quantize_int4(m.data(), out, in, 40), doctest::Contains("multiple of the group size"), Error);
  m[5] = NAN;
  CHECK_THROWS_WITH_AS(rtn_quantize_int4(m.data(), out, in, group), doctest::Contains("not finite"), Error);
}

TEST_CASE("the scheme tags carry their traits") {
  static_assert(Awq<4, 128>::bits == 4 && Awq<4, 128>::group == 128 && Awq<4, 128>::quantized);
  static_assert(Rtn<4, 64>::group == 64 && Rtn<4, 64>::values_per_word == 8 && Rtn<>::zero_point);
  static_assert(WeightScheme<Awq<>> && WeightScheme<Rtn<4, 32>>);
  CHECK(Awq<>::name == "awq");
  CHECK(Rtn<>::name == "rtn");
}

TEST_CASE("int4 groups: AutoAWQ tensors and turbine's I4G rows hold the same weights (random, every group size)") {
  std::mt19937 rng(std::random_device{}());
  std::normal_distribution<float> nd(0.0f, 0.05f);
  for (int64_t group : {32, 64, 128}) {
    CAPTURE(group);
    const int64_t out = 24, in = 3 * group;
    std::vector<float> w(static_cast<size_t>(out * in));
    for (auto& x : w) x = nd(rng);
    const Int4Groups g = rtn_quantize_int4(w.data(), out, in, group, round_scale_fp16);
    const std::vector<float> ref = g.dequantize();
    // AutoAWQ round trip: the unpacked groups are the same integers and scales.
    const AwqTensors t = int4_groups_to_awq(g);
    REQUIRE(t.qweight.size() == static_cast<size_t>(in * out / 8));
    REQUIRE(t.scales.size() == static_cast<size_t>(in / group * out));
    const Int4Groups back = int4_groups_from_awq(t.qweight.data(), t.qzeros.data(), t.scales.data(), out, in, group);
    CHECK(back.q == g.q);
    CHECK(back.zeros == g.zeros);
    CHECK(back.scales == g.scales);
    // Rows: dequantize_row of each row gives the reference weights exactly (fp16 scales kept).
    const auto rows = int4_groups_to_rows(g);
    const StorageType st = int4_groups_type(group);
    REQUIRE(rows.size() == row_bytes(st, in) * static_cast<size_t>(out));
    std::vector<float> row(static_cast<size_t>(in));
    int64_t mismatches = 0;
    for (int64_t j = 0; j < out; ++j) {
      io::dequantize_row(st, rows.data() + j * row_bytes(st, in), row.data(), in);
      for (int64_t i = 0; i < in; ++i) mismatches += row[i] != ref[j * in + i];
    }
    CHECK(mismatches == 0);
  }
  CHECK_THROWS_WITH_AS(int4_groups_type(96), doctest::Contains("group size 96"), Error);
}
