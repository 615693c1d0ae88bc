// GGML dequantizers: hand-built blocks for each of the first 11 types with expected values derived
// element by element from the format description (not from the code under test), spot values
// worked out on paper, and a cross-check against gguf-py's dequantizer.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "test_support.hpp"
#include <turbine/core/half.hpp>
#include <turbine/io/ggml_quants.hpp>

using turbine::StorageType;
using turbine::io::dequantize_row;

namespace {

// fp16 bit patterns of exactly representable scales.
constexpr uint16_t kHalfOne = 0x3C00, kHalfHalf = 0x3800, kHalfQuarter = 0x3400, kHalfTwo = 0x4000,
                   kHalfMinusOne = 0xBC00, kHalfMinusTwo = 0xC000;

struct Bytes {
  std::vector<uint8_t> b;
  explicit Bytes(size_t n) : b(n, 0) {}
  void u16(size_t off, uint16_t v) { std::memcpy(&b[off], &v, 2); }
  void u32(size_t off, uint32_t v) { std::memcpy(&b[off], &v, 4); }
  const std::byte* data() const { return reinterpret_cast<const std::byte*>(b.data()); }
};

std::vector<float> run(StorageType t, const Bytes& src, int64_t n) {
  std::vector<float> out(size_t(n), -12345.f);
  dequantize_row(t, src.data(), out.data(), n);
  return out;
}

void check_equal(const std::vector<float>& got, const std::vector<float>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    CHECK(got[i] == want[i]);  // all hand cases are exact in fp32
  }
}

// The 6-bit scale/min packing of Q4_K/Q5_K, written as the packer (the inverse of what the
// dequantizer does): scale/min j<4 in the low 6 bits of bytes j / j+4, scale/min j+4 split into
// a low nibble in byte j+8 and two high bits in the top of bytes j / j+4.
void pack_k_scales(Bytes& blk, size_t off, const int sc[8], const int mn[8]) {
  for (int j = 0; j < 4; ++j) {
    blk.b[off + j] = uint8_t((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    blk.b[off + j + 4] = uint8_t((mn[j] & 63) | ((mn[j + 4] >> 4) << 6));
    blk.b[off + j + 8] = uint8_t((sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4));
  }
}

constexpr int kKScales[8] = {1, 2, 3, 4, 63, 17, 32, 48};
constexpr int kKMins[8] = {0, 5, 10, 63, 1, 33, 16, 62};

}  // namespace

TEST_CASE("ggml type ids map to storage types and names") {
  using turbine::io::storage_type_from_ggml;
  CHECK(storage_type_from_ggml(0) == StorageType::F32);
  CHECK(storage_type_from_ggml(1) == StorageType::F16);
  CHECK(storage_type_from_ggml(2) == StorageType::Q4_0);
  CHECK(storage_type_from_ggml(3) == StorageType::Q4_1);
  CHECK(storage_type_from_ggml(6) == StorageType::Q5_0);
  CHECK(storage_type_from_ggml(7) == StorageType::Q5_1);
  CHECK(storage_type_from_ggml(8) == StorageType::Q8_0);
  CHECK(storage_type_from_ggml(12) == StorageType::Q4_K);
  CHECK(storage_type_from_ggml(13) == StorageType::Q5_K);
  CHECK(storage_type_from_ggml(14) == StorageType::Q6_K);
  CHECK(storage_type_from_ggml(10) == StorageType::Q2_K);
  CHECK(storage_type_from_ggml(11) == StorageType::Q3_K);
  CHECK(storage_type_from_ggml(20) == StorageType::IQ4_NL);
  CHECK(storage_type_from_ggml(23) == StorageType::IQ4_XS);
  CHECK(storage_type_from_ggml(30) == StorageType::BF16);
  for (uint32_t id : {4u, 5u, 9u, 15u, 16u, 17u, 18u, 19u, 21u, 22u, 28u, 29u, 31u, 39u, 1000u})
    CHECK_FALSE(storage_type_from_ggml(id).has_value());
  for (uint32_t id = 0; id < 64; ++id)
    if (auto t = storage_type_from_ggml(id)) CHECK(turbine::io::ggml_type_id(*t) == id);

  using turbine::io::ggml_type_name;
  CHECK(std::string(ggml_type_name(3)) == "Q4_1");
  CHECK(std::string(ggml_type_name(10)) == "Q2_K");
  CHECK(std::string(ggml_type_name(17)) == "IQ2_XS");
  CHECK(std::string(ggml_type_name(23)) == "IQ4_XS");
  CHECK(std::string(ggml_type_name(30)) == "BF16");
  CHECK(std::string(ggml_type_name(39)) == "MXFP4");
  CHECK(std::string(ggml_type_name(200)) == "type 200");
  CHECK(std::string(ggml_type_name(4000000000u)) == "type >= 256");
}

TEST_CASE("branch-free fp16 conversion matches the reference for all 65536 inputs") {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float a = turbine::io::detail::half_to_float(uint16_t(h)), b = turbine::fp16_to_f32(uint16_t(h));
    if (std::isnan(b)) {
      CHECK(std::isnan(a));
    } else {
      uint32_t ab, bb;
      std::memcpy(&ab, &a, 4);
      std::memcpy(&bb, &b, 4);
      if (ab != bb) FAIL_CHECK("fp16 0x" << std::hex << h << ": " << a << " vs " << b);
    }
  }
}

TEST_CASE("F32") {
  const float v[4] = {1.5f, -2.0f, 0.0f, 3.25f};
  Bytes src(16);
  std::memcpy(src.b.data(), v, 16);
  check_equal(run(StorageType::F32, src, 4), {1.5f, -2.0f, 0.0f, 3.25f});
}

TEST_CASE("F16") {
  const uint16_t h[8] = {0x3C00, 0xC000, 0x3555, 0x7BFF, 0x0001, 0x8000, 0x0400, 0x3E00};
  Bytes src(16);
  std::memcpy(src.b.data(), h, 16);
  const auto got = run(StorageType::F16, src, 8);
  // 0x3555 = 2^-2 * (1 + 0x155/1024); 0x0001 = smallest subnormal 2^-24; 0x0400 = 2^-14.
  check_equal(got, {1.0f, -2.0f, 0.25f * (1.0f + 341.0f / 1024.0f), 65504.0f, std::ldexp(1.0f, -24), -0.0f,
                    std::ldexp(1.0f, -14), 1.5f});
  CHECK(std::signbit(got[5]));
  Bytes inf(2);
  inf.u16(0, 0x7C00);
  CHECK(std::isinf(run(StorageType::F16, inf, 1)[0]));
}

TEST_CASE("BF16") {
  const uint16_t h[4] = {0x3F80, 0xC040, 0x4049, 0x0001};
  Bytes src(8);
  std::memcpy(src.b.data(), h, 8);
  // 0x4049 = 2 * (1 + 0x49/128) = 3.140625; 0x0001 is the fp32 with bits 0x00010000 = 2^-133.
  check_equal(run(StorageType::BF16, src, 4), {1.0f, -3.0f, 3.140625f, std::ldexp(1.0f, -133)});
}

TEST_CASE("Q8_0: d * q, int8 quants") {
  Bytes blk(34);
  blk.u16(0, kHalfHalf);
  for (int j = 0; j < 32; ++j) blk.b[2 + j] = uint8_t(int8_t(j - 16));
  blk.b[2] = uint8_t(int8_t(-128));
  blk.b[33] = 127;
  std::vector<float> want(32);
  for (int j = 0; j < 32; ++j) want[j] = 0.5f * float(j - 16);
  want[0] = -64.0f;
  want[31] = 63.5f;
  check_equal(run(StorageType::Q8_0, blk, 32), want);
}

TEST_CASE("Q4_0: weights j and j+16 share byte j, low nibble first, d * (q - 8)") {
  Bytes blk(2 * 18);  // two blocks, the second with d = -1
  for (int k = 0; k < 2; ++k) {
    blk.u16(18 * k, k == 0 ? kHalfTwo : kHalfMinusOne);
    for (int j = 0; j < 16; ++j) blk.b[18 * k + 2 + j] = uint8_t(j | ((15 - j) << 4));
  }
  std::vector<float> want(64);
  for (int j = 0; j < 16; ++j) {
    want[j] = 2.0f * float(j - 8);
    want[j + 16] = 2.0f * float(7 - j);
    want[32 + j] = -float(j - 8);
    want[48 + j] = -float(7 - j);
  }
  const auto got = run(StorageType::Q4_0, blk, 64);
  check_equal(got, want);
  CHECK(got[0] == -16.0f);  // nibble 0 -> (0 - 8) * 2
  CHECK(got[16] == 14.0f);  // high nibble of byte 0 is 15 -> (15 - 8) * 2
}

TEST_CASE("Q4_1: d * q + m") {
  Bytes blk(20);
  blk.u16(0, kHalfHalf);
  blk.u16(2, kHalfMinusOne);
  for (int j = 0; j < 16; ++j) blk.b[4 + j] = uint8_t(j | ((15 - j) << 4));
  std::vector<float> want(32);
  for (int j = 0; j < 16; ++j) {
    want[j] = 0.5f * float(j) - 1.0f;
    want[j + 16] = 0.5f * float(15 - j) - 1.0f;
  }
  const auto got = run(StorageType::Q4_1, blk, 32);
  check_equal(got, want);
  CHECK(got[0] == -1.0f);
  CHECK(got[15] == 6.5f);
  CHECK(got[16] == 6.5f);
}

// Q5_0/Q5_1: the 5th bit of weight i is bit i of the little-endian uint32 qh.
constexpr uint32_t kQh = 0x9A5C3F01u;
int q5(const Bytes& blk, size_t qs_off, int i) {
  const uint8_t byte = blk.b[qs_off + size_t(i % 16)];
  const int nib = i < 16 ? (byte & 15) : (byte >> 4);
  return nib | int((kQh >> i) & 1u) << 4;
}

TEST_CASE("Q5_0: d * (q - 16)") {
  Bytes blk(22);
  blk.u16(0, kHalfQuarter);
  blk.u32(2, kQh);
  for (int j = 0; j < 16; ++j) blk.b[6 + j] = uint8_t(j * 11 + 2);
  std::vector<float> want(32);
  for (int i = 0; i < 32; ++i) want[i] = 0.25f * float(q5(blk, 6, i) - 16);
  const auto got = run(StorageType::Q5_0, blk, 32);
  check_equal(got, want);
  CHECK(got[0] == 0.5f);  // low nibble 2, qh bit 0 set -> 18 - 16 = 2, * 0.25
  // byte 15 = 167 = 0xA7: weight 31 = high nibble 0xA | bit 31 of qh (1) << 4 = 26 -> 10 * 0.25
  CHECK(got[31] == 2.5f);
}

TEST_CASE("Q5_1: d * q + m") {
  Bytes blk(24);
  blk.u16(0, kHalfHalf);
  blk.u16(2, kHalfMinusTwo);
  blk.u32(4, kQh);
  for (int j = 0; j < 16; ++j) blk.b[8 + j] = uint8_t(j * 11 + 2);
  std::vector<float> want(32);
  for (int i = 0; i < 32; ++i) want[i] = 0.5f * float(q5(blk, 8, i)) - 2.0f;
  const auto got = run(StorageType::Q5_1, blk, 32);
  check_equal(got, want);
  CHECK(got[0] == 7.0f);  // 18 * 0.5 - 2
}

TEST_CASE("Q4_K: 256-weight super-block, 6-bit scales and mins") {
  Bytes blk(144);
  blk.u16(0, kHalfOne);   // d
  blk.u16(2, kHalfHalf);  // dmin
  pack_k_scales(blk, 4, kKScales, kKMins);
  for (int k = 0; k < 128; ++k) blk.b[16 + k] = uint8_t(k * 7 + 3);
  // Weight i: 32-byte chunk i/64 of qs, byte i%32 in it, low nibble for the first 32 weights of
  // the chunk and high for the next 32; sub-block i/32 picks scale and min.
  std::vector<float> want(256);
  for (int i = 0; i < 256; ++i) {
    const uint8_t byte = blk.b[16 + size_t(32 * (i / 64) + i % 32)];
    const int q = (i % 64) < 32 ? (byte & 15) : (byte >> 4);
    const int s = i / 32;
    want[i] = 1.0f * float(kKScales[s]) * float(q) - 0.5f * float(kKMins[s]);
  }
  const auto got = run(StorageType::Q4_K, blk, 256);
  check_equal(got, want);
  CHECK(got[0] == 3.0f);      // qs[0] = 3, scale 1, min 0
  CHECK(got[160] == 187.5f);  // qs[64] = 195 -> high nibble 12; scale 17, min 33: 204 - 16.5
  CHECK(got[255] == 305.0f);  // qs[127] = 124 -> high nibble 7; scale 48, min 62: 336 - 31
}

TEST_CASE("Q5_K: Q4_K plus a 5th bit: bit (i/32) of qh[i%32]") {
  Bytes blk(176);
  blk.u16(0, kHalfOne);
  blk.u16(2, kHalfHalf);
  pack_k_scales(blk, 4, kKScales, kKMins);
  for (int l = 0; l < 32; ++l) blk.b[16 + l] = uint8_t(l * 37 + 11);
  for (int k = 0; k < 128; ++k) blk.b[48 + k] = uint8_t(k * 7 + 3);
  std::vector<float> want(256);
  for (int i = 0; i < 256; ++i) {
    const uint8_t byte = blk.b[48 + size_t(32 * (i / 64) + i % 32)];
    const int s = i / 32;
    const int q = ((i % 64) < 32 ? (byte & 15) : (byte >> 4)) | ((blk.b[16 + size_t(i % 32)] >> s) & 1) << 4;
    want[i] = float(kKScales[s]) * float(q) - 0.5f * float(kKMins[s]);
  }
  const auto got = run(StorageType::Q5_K, blk, 256);
  check_equal(got, want);
  CHECK(got[0] == 19.0f);  // nibble 3 | (qh[0] = 11, bit 0 set) << 4 = 19; scale 1, min 0
}

TEST_CASE("Q6_K: ql low 4 bits, qh high 2 bits, int8 scale per 16 weights, d last") {
  Bytes blk(2 * 210);  // two super-blocks, the second with d = -2
  for (int k = 0; k < 2; ++k) {
    const size_t o = 210 * size_t(k);
    for (int j = 0; j < 128; ++j) blk.b[o + j] = uint8_t(j * 13 + 5 + k);
    for (int j = 0; j < 64; ++j) blk.b[o + 128 + j] = uint8_t(j * 29 + 7);
    for (int g = 0; g < 16; ++g) blk.b[o + 192 + g] = uint8_t(int8_t(g * 9 - 70));
    blk.u16(o + 208, k == 0 ? kHalfHalf : kHalfMinusTwo);
  }
  // Weight i of a super-block: half h = i/128, quarter k = (i%128)/32, l = i%32. Low bits: ql byte
  // 64h + l + 32*(k%2), low nibble for k < 2, high for k >= 2; high bits: bits 2k..2k+1 of
  // qh[32h + l]; value d * scale[i/16] * (q - 32).
  std::vector<float> want(512);
  for (int sb = 0; sb < 2; ++sb) {
    const size_t o = 210 * size_t(sb);
    const float d = sb == 0 ? 0.5f : -2.0f;
    for (int i = 0; i < 256; ++i) {
      const int h = i / 128, k = (i % 128) / 32, l = i % 32;
      const uint8_t lo_byte = blk.b[o + size_t(64 * h + l + 32 * (k % 2))];
      const int lo = k < 2 ? (lo_byte & 15) : (lo_byte >> 4);
      const int hi = (blk.b[o + 128 + size_t(32 * h + l)] >> (2 * k)) & 3;
      const int scale = int8_t(blk.b[o + 192 + size_t(i / 16)]);
      want[256 * sb + i] = d * float(scale) * float((lo | hi << 4) - 32);
    }
  }
  const auto got = run(StorageType::Q6_K, blk, 512);
  check_equal(got, want);
  CHECK(got[0] == -735.0f);  // ql 5, qh 7 -> bits 3: q = 53 - 32 = 21; scale -70; d 0.5
}

TEST_CASE("row length must be a whole number of blocks") {
  Bytes blk(1024);
  std::vector<float> out(512);
  CHECK_THROWS_AS(dequantize_row(StorageType::Q4_1, blk.data(), out.data(), 48), turbine::Error);
  CHECK_THROWS_AS(dequantize_row(StorageType::Q6_K, blk.data(), out.data(), 128), turbine::Error);
  CHECK_THROWS_AS(dequantize_row(StorageType::F16, blk.data(), out.data(), -1), turbine::Error);
  CHECK_NOTHROW(dequantize_row(StorageType::Q4_1, blk.data(), out.data(), 0));

  turbine::RawTensor t{"w", StorageType::Q8_0, {2, 32}, blk.data(), 68, "x.gguf"};
  CHECK_NOTHROW(dequantize_row(t, 1, out.data()));
  CHECK_THROWS_WITH_AS(dequantize_row(t, 2, out.data()), doctest::Contains("x.gguf: tensor 'w'"), turbine::Error);
}

// Cross-check with gguf-py 0.19.0 (numpy 2.4.6): for case c (index in this table), the bytes are
// 1000 + c fed to the LCG below, with the top exponent bit of every fp16 field (F32: every float)
// cleared so all values are finite; expected values are gguf.quants.dequantize(bytes, type).
// Produced once with this script (kept here so the numbers can be regenerated):
//   def lcg_bytes(seed, n):  # same generator as lcg_bytes() below
//     s = seed; out = bytearray(n)
//     for i in range(n):
//       s = (s * 6364136223846793005 + 1442695040888963407) % 2**64; out[i] = (s >> 33) & 0xff
//     return out
//   raw = lcg_bytes(1000 + c, n // block_elems * block_bytes); mask fp16 fields: raw[off + 1] &= 0xBF
//   x = gguf.quants.dequantize(np.frombuffer(bytes(raw), np.uint8), type).astype(np.float64)
//   print(sum(x[k] * (k % 7 + 1)), x[0], x[1], x[n // 2 + 3], x[n - 1])
namespace {
struct CrossCheck {
  StorageType type;
  int64_t n;
  std::vector<int> half_offsets;  // fp16 fields in a block (byte offsets)
  double weighted_sum;
  double spot[4];
};
std::vector<uint8_t> lcg_bytes(uint64_t seed, size_t n) {
  std::vector<uint8_t> out(n);
  for (auto& b : out) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    b = uint8_t(seed >> 33);
  }
  return out;
}
}  // namespace

TEST_CASE("cross-check with gguf-py on pseudo-random blocks") {
  const CrossCheck cases[] = {
      {StorageType::F32, 64, {}, -0.7503046257252957, {-5.148878892691222e-11, -1.7677566500153323e-38, 6.153667263357547e-26, 1.6137184978720424e-32}},
      {StorageType::F16, 64, {0}, -4.759607315063477, {-6.574392318725586e-05, 0.00803375244140625, 0.057159423828125, -0.00540924072265625}},
      {StorageType::BF16, 64, {0}, -0.8513267002517806, {4.6448130099413175e-26, -1.3631516442219084e-27, -3.875457937867229e-38, -2.087089182034596e-18}},
      {StorageType::Q8_0, 64, {0}, -36.48358917236328, {-2.73724365234375, 1.72344970703125, 0.06360054016113281, 0.033473968505859375}},
      {StorageType::Q4_0, 64, {0}, -33.62766718864441, {-3.313720703125, 1.420166015625, -0.0011273622512817383, -0.00016105175018310547}},
      {StorageType::Q4_1, 64, {0, 2}, -83.76398468017578, {0.029646635055541992, 0.028223276138305664, -0.6685969829559326, -0.6649229526519775}},
      {StorageType::Q5_0, 64, {0}, 30.06005859375, {-0.005615234375, 0.039306640625, -1.1732177734375, 1.1732177734375}},
      {StorageType::Q5_1, 64, {0, 2}, -657.5422072410583, {-0.2669522762298584, -1.2822415828704834, -5.455047607421875, -3.376922607421875}},
      {StorageType::Q4_K, 512, {0, 2}, -288406.34424591064, {-51.8544921875, -135.1162109375, 0.090301513671875, 0.2693634033203125}},
      {StorageType::Q5_K, 512, {0, 2}, 19016.16015291214, {4.369422912597656, 4.535106658935547, 2.4416234493255615, 33.792972564697266}},
      {StorageType::Q6_K, 512, {208}, 5093.370307922363, {0.22256851196289062, -1.2908973693847656, 3.093292236328125, 46.62353515625}},
      {StorageType::Q2_K, 512, {80, 82}, -349.4795608520508, {-0.0207366943359375, -0.02625560760498047, -1.2344298362731934, -0.08828115463256836}},
      {StorageType::Q3_K, 512, {108}, 9444.2578125, {162.75, -108.5, -4.13818359375, 23.173828125}},
      {StorageType::IQ4_NL, 64, {0}, 64.53409147262573, {0.005335807800292969, 0.01867532730102539, -0.033538818359375, 4.259429931640625}},
      {StorageType::IQ4_XS, 512, {0}, 1116.8592281341553, {-7.231475830078125, 4.159698486328125, 0.08102953433990479, 0.03975033760070801}},
  };
  for (size_t c = 0; c < std::size(cases); ++c) {
    const auto& cc = cases[c];
    const auto info = turbine::storage_info(cc.type);
    INFO(info.name);
    const size_t blocks = size_t(cc.n / info.block_elems);
    Bytes src(blocks * size_t(info.block_bytes));
    src.b = lcg_bytes(1000 + c, src.b.size());
    for (size_t b = 0; b < blocks; ++b)
      for (int off : cc.half_offsets) src.b[b * size_t(info.block_bytes) + size_t(off) + 1] &= 0xBF;
    if (cc.type == StorageType::F32)
      for (size_t k = 0; k < src.b.size(); k += 4) src.b[k + 3] &= 0xBF;
    const auto x = run(cc.type, src, cc.n);
    double sum = 0;
    for (int64_t k = 0; k < cc.n; ++k) {
      REQUIRE(std::isfinite(x[size_t(k)]));
      sum += double(x[size_t(k)]) * double(k % 7 + 1);
    }
    CHECK(sum == doctest::Approx(cc.weighted_sum).epsilon(1e-6));
    const int64_t at[4] = {0, 1, cc.n / 2 + 3, cc.n - 1};
    for (int s = 0; s < 4; ++s)
      CHECK(double(x[size_t(at[s])]) == doctest::Approx(cc.spot[s]).epsilon(1e-6).scale(0));
  }
}
