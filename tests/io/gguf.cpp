// GGUF reader and writer: round trips of v2/v3 files through GgufWriter, every rejected kind of
// bad input (hand-built bytes), truncation at every offset, and facts about the default model.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "test_support.hpp"
#include <turbine/core/half.hpp>
#include <turbine/io/ggml_quants.hpp>
#include <turbine/io/gguf.hpp>
#include <turbine/io/gguf_writer.hpp>

using turbine::StorageType;
using turbine::io::GgufFile;
using turbine::io::GgufType;
using turbine::io::GgufValue;
using turbine::io::GgufWriter;

namespace {

std::vector<std::byte> bytes_of(const void* p, size_t n) {
  const auto* b = static_cast<const std::byte*>(p);
  return {b, b + n};
}

// Q8_0 blocks with d = 1 and q = k - 16, so row r, column c dequantizes to ((c % 32) - 16).
std::vector<std::byte> q8_rows(int rows, int cols) {
  std::vector<std::byte> out;
  for (int r = 0; r < rows; ++r)
    for (int b = 0; b < cols / 32; ++b) {
      const uint16_t d = 0x3C00;
      const auto h = bytes_of(&d, 2);
      out.insert(out.end(), h.begin(), h.end());
      for (int k = 0; k < 32; ++k) out.push_back(std::byte(uint8_t(int8_t(k - 16))));
    }
  return out;
}

// A writer holding every metadata type, arrays, nested arrays and tensors of several types.
GgufWriter sample_writer(uint32_t version, uint32_t alignment) {
  GgufWriter w(version);
  w.add_string("general.architecture", "llama");
  if (alignment != 32) w.set_alignment(alignment);
  w.add("t.u8", GgufValue::u8(200));
  w.add("t.i8", GgufValue::i8(-100));
  w.add("t.u16", GgufValue::u16(60000));
  w.add("t.i16", GgufValue::i16(-30000));
  w.add_uint32("t.u32", 4000000000u);
  w.add_int32("t.i32", -2000000000);
  w.add_uint64("t.u64", 1ull << 40);
  w.add_uint64("t.u64_huge", std::numeric_limits<uint64_t>::max());
  w.add("t.i64", GgufValue::i64(-(int64_t{1} << 50)));
  w.add_float32("t.f32", 0.1f);
  w.add("t.f64", GgufValue::f64(3.141592653589793));
  w.add_bool("t.true", true);
  w.add_bool("t.false", false);
  w.add_string("t.empty_string", "");
  w.add_string("t.utf8", "h\xc3\xa9llo");
  w.add_string_array("t.strings", {"a", "", "<|im_start|>"});
  w.add_float32_array("t.floats", {1.5f, -0.25f});
  w.add("t.doubles", GgufValue::float_array(GgufType::Float64, {1e300, -2.5}));
  w.add_int32_array("t.ints", {1, -2, 3});
  w.add("t.u8s", GgufValue::int_array(GgufType::Uint8, {0, 255}));
  w.add("t.u64s", GgufValue::int_array(GgufType::Uint64, {7}));
  w.add("t.bools", GgufValue::bool_array({true, false, true}));
  w.add("t.empty_array", GgufValue::int_array(GgufType::Int16, {}));
  w.add("t.nested", GgufValue::array_of_arrays({GgufValue::int_array(GgufType::Int32, {1, 2}),
                                                GgufValue::string_array({"x"}),
                                                GgufValue::array_of_arrays({GgufValue::float_array(GgufType::Float32, {0.5})})}));
  const std::vector<float> norm = {1, 2, 3, 4, 5, 6};
  w.add_tensor_f32("norm.weight", {6}, norm);
  w.add_tensor("embd.weight", StorageType::Q8_0, {3, 64}, q8_rows(3, 64));
  std::vector<std::byte> f16(2 * 2 * 3);
  for (int i = 0; i < 6; ++i) {
    const uint16_t h = turbine::f32_to_fp16(float(i) - 2.5f);
    std::memcpy(f16.data() + 2 * i, &h, 2);
  }
  w.add_tensor("f16.weight", StorageType::F16, {2, 3}, f16);
  w.add_tensor("q6k.weight", StorageType::Q6_K, {1, 2, 256}, std::vector<std::byte>(2 * 210));
  // Last, and a multiple of every alignment used here in size, so the file ends with its data.
  w.add_tensor_f32("last.weight", {2, 8}, std::vector<float>(16, 0.75f));
  return w;
}

// Builds GGUF bytes by hand, for inputs GgufWriter refuses to produce.
struct Raw {
  std::vector<std::byte> b;
  Raw& raw(const void* p, size_t n) {
    const auto v = bytes_of(p, n);
    b.insert(b.end(), v.begin(), v.end());
    return *this;
  }
  Raw& u32(uint32_t v) { return raw(&v, 4); }
  Raw& u64(uint64_t v) { return raw(&v, 8); }
  Raw& str(const std::string& s) { return u64(s.size()).raw(s.data(), s.size()); }
  Raw& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    return raw("GGUF", 4).u32(version).u64(n_tensors).u64(n_kv);
  }
  Raw& kv_u32(const std::string& key, uint32_t v) { return str(key).u32(uint32_t(GgufType::Uint32)).u32(v); }
  Raw& tensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    str(name).u32(uint32_t(ne.size()));
    for (auto d : ne) u64(d);
    return u32(type).u64(offset);
  }
  Raw& pad(size_t align = 32) {
    while (b.size() % align) b.push_back(std::byte{0});
    return *this;
  }
  Raw& zeros(size_t n) {
    b.insert(b.end(), n, std::byte{0});
    return *this;
  }
};

// Parsing must fail with one line that names the file and contains every needle.
void expect_error(std::vector<std::byte> bytes, std::initializer_list<std::string> needles) {
  try {
    GgufFile::from_bytes(std::move(bytes), "bad.gguf");
    FAIL("parsed without error; expected one mentioning " << *needles.begin());
  } catch (const turbine::Error& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.rfind("bad.gguf: ", 0) == 0);
    CHECK(msg.find('\n') == std::string::npos);
    for (const auto& n : needles) CHECK(msg.find(n) != std::string::npos);
  }
}

void check_sample(const GgufFile& f, uint32_t version, uint32_t alignment) {
  CHECK(f.version() == version);
  CHECK(f.alignment() == alignment);
  CHECK(f.data_offset() % alignment == 0);
  CHECK(f.get_string("general.architecture") == "llama");
  CHECK(f.get_int("t.u8") == 200);
  CHECK(f.get_int("t.i8") == -100);
  CHECK(f.get_int("t.u16") == 60000);
  CHECK(f.get_int("t.i16") == -30000);
  CHECK(f.get_int("t.u32") == 4000000000LL);
  CHECK(f.get_int("t.i32") == -2000000000LL);
  CHECK(f.get_int("t.u64") == (int64_t{1} << 40));
  CHECK(f.get_int("t.i64") == -(int64_t{1} << 50));
  CHECK(f.find("t.u64")->type == GgufType::Uint64);
  CHECK(f.find("t.i16")->type == GgufType::Int16);
  CHECK_THROWS_WITH_AS(f.get_int("t.u64_huge"), doctest::Contains("'t.u64_huge'"), turbine::Error);
  CHECK(uint64_t(std::get<int64_t>(f.find("t.u64_huge")->payload)) == std::numeric_limits<uint64_t>::max());
  CHECK(f.get_float("t.f32") == double(0.1f));
  CHECK(f.get_float("t.f64") == 3.141592653589793);
  CHECK(f.get_float("t.u8") == 200.0);  // integers convert
  CHECK(f.get_bool("t.true"));
  CHECK_FALSE(f.get_bool("t.false"));
  CHECK(f.get_string("t.empty_string").empty());
  CHECK(f.get_string("t.utf8") == "h\xc3\xa9llo");
  CHECK(f.get_string_array("t.strings") == std::vector<std::string>{"a", "", "<|im_start|>"});
  CHECK(f.get_float_array("t.floats") == std::vector<double>{1.5, -0.25});
  CHECK(f.get_float_array("t.doubles") == std::vector<double>{1e300, -2.5});
  CHECK(f.get_int_array("t.ints") == std::vector<int64_t>{1, -2, 3});
  CHECK(f.get_int_array("t.u8s") == std::vector<int64_t>{0, 255});
  CHECK(f.get_int_array("t.u64s") == std::vector<int64_t>{7});
  CHECK(f.get_int_array("t.empty_array").empty());
  CHECK(f.find("t.empty_array")->elem_type == GgufType::Int16);
  const GgufValue* bools = f.find("t.bools");
  REQUIRE(bools);
  CHECK(bools->type_string() == "array of bool");
  CHECK(std::get<std::vector<int64_t>>(bools->payload) == std::vector<int64_t>{1, 0, 1});
  const GgufValue* nested = f.find("t.nested");
  REQUIRE(nested);
  CHECK(nested->type_string() == "array of array");
  const auto& outer = std::get<std::vector<GgufValue>>(nested->payload);
  REQUIRE(outer.size() == 3);
  CHECK(std::get<std::vector<int64_t>>(outer[0].payload) == std::vector<int64_t>{1, 2});
  CHECK(std::get<std::vector<std::string>>(outer[1].payload) == std::vector<std::string>{"x"});
  const auto& inner = std::get<std::vector<GgufValue>>(outer[2].payload);
  REQUIRE(inner.size() == 1);
  CHECK(std::get<std::vector<double>>(inner[0].payload) == std::vector<double>{0.5});

  CHECK(f.find_int("t.i32") == -2000000000LL);
  CHECK_FALSE(f.find_int("missing").has_value());
  CHECK_FALSE(f.find_float("missing").has_value());
  CHECK_FALSE(f.find_string("missing").has_value());
  CHECK(f.find_string("general.architecture") == "llama");
  CHECK(f.find_float("t.f32") == double(0.1f));
  CHECK(f.find("missing") == nullptr);
  REQUIRE(f.keys().size() >= 24);
  CHECK(f.keys()[0] == "general.architecture");

  REQUIRE(f.tensors().size() == 5);
  CHECK(f.tensors()[0].name == "norm.weight");
  CHECK(f.find_tensor("nope") == nullptr);
  for (const auto& t : f.tensors()) {
    CHECK(t.file == f.path());
    CHECK(size_t(t.data - f.tensors()[0].data) % alignment == 0);
  }
  const auto* norm = f.find_tensor("norm.weight");
  REQUIRE(norm);
  CHECK(norm->type == StorageType::F32);
  CHECK(norm->shape == std::vector<int64_t>{6});
  CHECK(norm->nbytes == 24);
  float v[6];
  std::memcpy(v, norm->data, 24);
  CHECK(v[5] == 6.0f);

  const auto* embd = f.find_tensor("embd.weight");
  REQUIRE(embd);
  CHECK(embd->type == StorageType::Q8_0);
  CHECK(embd->shape == std::vector<int64_t>{3, 64});
  CHECK(embd->nbytes == 3 * 2 * 34);
  std::vector<float> row(64);
  turbine::io::dequantize_row(*embd, 2, row.data());
  for (int c = 0; c < 64; ++c) CHECK(row[c] == float(c % 32 - 16));

  const auto* f16 = f.find_tensor("f16.weight");
  REQUIRE(f16);
  CHECK(f16->shape == std::vector<int64_t>{2, 3});
  turbine::io::dequantize_row(*f16, 1, row.data());
  CHECK(row[0] == 0.5f);
  CHECK(row[2] == 2.5f);

  const auto* q6 = f.find_tensor("q6k.weight");
  REQUIRE(q6);
  CHECK(q6->shape == std::vector<int64_t>{1, 2, 256});
  CHECK(q6->rows() == 2);
  CHECK(q6->nbytes == 420);
}

}  // namespace

TEST_CASE("GgufWriter -> GgufFile round trip, v3 and v2, default and custom alignment") {
  for (uint32_t version : {3u, 2u})
    for (uint32_t alignment : {32u, 64u, 256u}) {
      INFO("version " << version << ", alignment " << alignment);
      auto bytes = sample_writer(version, alignment).to_bytes();
      const auto f = GgufFile::from_bytes(std::move(bytes), "sample.gguf");
      CHECK(f.path() == "sample.gguf");
      check_sample(f, version, alignment);
      if (alignment != 32) CHECK(f.get_int("general.alignment") == alignment);
    }
}

TEST_CASE("GgufFile reads a mapped file; moving it keeps tensor views valid") {
  const auto path = (std::filesystem::temp_directory_path() / "turbine_test_gguf_roundtrip.gguf").string();
  sample_writer(3, 64).write(path);
  GgufFile a(path);
  check_sample(a, 3, 64);
  GgufFile b = std::move(a);
  check_sample(b, 3, 64);
  CHECK(b.path() == path);
  std::filesystem::remove(path);
  CHECK_THROWS_WITH_AS(GgufFile("/nonexistent/dir/model.gguf"), doctest::Contains("/nonexistent/dir/model.gguf"),
                       turbine::Error);
}

TEST_CASE("getters name the file and key on missing keys and wrong types") {
  const auto f = GgufFile::from_bytes(sample_writer(3, 32).to_bytes(), "model.gguf");
  const auto check_msg = [](auto&& fn, const std::string& needle) {
    try {
      fn();
      FAIL("no error");
    } catch (const turbine::Error& e) {
      const std::string msg = e.what();
      INFO(msg);
      CHECK(msg.rfind("model.gguf: ", 0) == 0);
      CHECK(msg.find(needle) != std::string::npos);
    }
  };
  check_msg([&] { f.get_int("llama.block_count"); }, "missing metadata key 'llama.block_count'");
  check_msg([&] { f.get_string("t.u32"); }, "'t.u32' is uint32, expected a string");
  check_msg([&] { f.get_int("general.architecture"); }, "'general.architecture' is string, expected an integer");
  check_msg([&] { f.get_float("t.true"); }, "'t.true' is bool, expected a float");
  check_msg([&] { f.get_bool("t.u8"); }, "'t.u8' is uint8, expected a bool");
  check_msg([&] { f.get_string_array("t.ints"); }, "'t.ints' is array of int32, expected an array of strings");
  check_msg([&] { f.get_float_array("t.strings"); }, "'t.strings' is array of string");
  check_msg([&] { f.get_int_array("t.floats"); }, "'t.floats' is array of float32");
  check_msg([&] { f.get_int_array("t.bools"); }, "'t.bools'");
  check_msg([&] { f.find_int("general.architecture"); }, "'general.architecture'");
  check_msg([&] { f.find_string("t.u8"); }, "'t.u8'");
}

TEST_CASE("GgufWriter refuses what it cannot write") {
  GgufWriter w;
  w.add_uint32("a", 1);
  CHECK_THROWS_AS(w.add_uint32("a", 2), turbine::Error);
  CHECK_THROWS_AS(w.add("b", GgufValue::int_array(GgufType::Uint8, {256})), turbine::Error);
  CHECK_THROWS_AS(w.add("c", GgufValue::integer(GgufType::Int8, 128)), turbine::Error);
  CHECK_THROWS_AS(w.set_alignment(48), turbine::Error);
  CHECK_THROWS_AS(w.add("general.alignment", GgufValue::string("x")), turbine::Error);
  CHECK_THROWS_AS(w.add_tensor("t", StorageType::Q4_1, {2, 16}, std::vector<std::byte>(20)), turbine::Error);
  CHECK_THROWS_AS(w.add_tensor("t", StorageType::F32, {2, 2}, std::vector<std::byte>(15)), turbine::Error);
  CHECK_THROWS_AS(w.add_tensor("t", StorageType::F32, {1, 1, 1, 1, 1}, std::vector<std::byte>(4)), turbine::Error);
  w.add_tensor("t", StorageType::F32, {1}, std::vector<std::byte>(4));
  CHECK_THROWS_AS(w.add_tensor("t", StorageType::F32, {1}, std::vector<std::byte>(4)), turbine::Error);
  CHECK_THROWS_AS(GgufWriter(1), turbine::Error);
  CHECK_THROWS_AS(w.write("/nonexistent/dir/out.gguf"), turbine::Error);
}

TEST_CASE("header errors") {
  expect_error({}, {"truncated"});
  expect_error(Raw().raw("GGML", 4).u32(3).u64(0).u64(0).b, {"not a GGUF file"});
  expect_error(Raw().header(0, 0, 1).b, {"GGUF version 1 is not supported"});
  expect_error(Raw().header(0, 0, 4).b, {"unsupported GGUF version 4"});
  expect_error(Raw().header(0, 0, 0x03000000).b, {"big-endian"});
  expect_error(Raw().header(uint64_t(1) << 60, 0).b, {"tensors"});
  expect_error(Raw().header(0, ~uint64_t{0}).b, {"metadata entries"});
  expect_error(Raw().header(2, 0).tensor("a", {32}, 0, 0).b, {"2 tensors"});  // claims 2, room for 1
  CHECK_NOTHROW(GgufFile::from_bytes(Raw().header(0, 0).b, "empty.gguf"));
}

TEST_CASE("metadata errors name the key") {
  // String length past the end of the file.
  expect_error(Raw().header(0, 1).str("k").u32(uint32_t(GgufType::String)).u64(1000).raw("abc", 3).b,
               {"'k'", "length 1000"});
  expect_error(Raw().header(0, 1).u64(~uint64_t{0}).zeros(16).b, {"key of metadata entry 0", "length"});
  // Array length (times element size) past the end.
  expect_error(Raw().header(0, 1).str("arr").u32(uint32_t(GgufType::Array)).u32(uint32_t(GgufType::Uint32))
                   .u64(3).u32(1).u32(2).b,
               {"'arr'", "claims 3 elements"});
  expect_error(Raw().header(0, 1).str("arr").u32(uint32_t(GgufType::Array)).u32(uint32_t(GgufType::String))
                   .u64(uint64_t(1) << 61).b,
               {"'arr'"});
  // Nesting too deep: arrays of one array, 20 levels down.
  {
    Raw r;
    r.header(0, 1).str("deep").u32(uint32_t(GgufType::Array));
    for (int i = 0; i < 20; ++i) r.u32(uint32_t(GgufType::Array)).u64(1);
    r.u32(uint32_t(GgufType::Uint8)).u64(0);
    expect_error(r.b, {"'deep'", "deeper"});
  }
  expect_error(Raw().header(0, 1).str("t").u32(13).u32(0).b, {"'t'", "invalid value type 13"});
  expect_error(Raw().header(0, 1).str("t").u32(uint32_t(GgufType::Array)).u32(99).u64(0).b, {"'t'", "invalid type 99"});
  expect_error(Raw().header(0, 1).str("flag").u32(uint32_t(GgufType::Bool)).raw("\x02", 1).b, {"'flag'", "bool"});
  expect_error(Raw().header(0, 2).kv_u32("dup.key", 1).kv_u32("dup.key", 2).b, {"duplicate", "'dup.key'"});
  // A key with a newline and binary bytes is escaped, keeping the message on one line.
  expect_error(Raw().header(0, 2).kv_u32("a\nb\x01", 1).kv_u32("a\nb\x01", 2).b, {"'a\\x0ab\\x01'"});
  // Alignment: must be a power of two, nonzero, an integer.
  expect_error(Raw().header(0, 1).kv_u32("general.alignment", 48).b, {"'general.alignment'", "48"});
  expect_error(Raw().header(0, 1).kv_u32("general.alignment", 0).b, {"'general.alignment'"});
  expect_error(Raw().header(0, 1).str("general.alignment").u32(uint32_t(GgufType::String)).str("32").b,
               {"'general.alignment'", "expected an integer"});
}

TEST_CASE("tensor info errors name the tensor") {
  const auto one = [](const std::string& name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset,
                      size_t data_bytes) {
    return Raw().header(1, 0).tensor(name, std::move(ne), type, offset).pad().zeros(data_bytes).b;
  };
  CHECK_NOTHROW(GgufFile::from_bytes(one("ok", {32, 2}, 3, 0, 40), "ok.gguf"));
  expect_error(one("blk.0.attn_q.weight", {256, 256}, 17, 0, 1 << 16),
               {"tensor 'blk.0.attn_q.weight' has type IQ2_XS", "which turbine does not support (supported: F32, F16"});
  expect_error(one("w", {32}, 1234, 0, 64), {"'w' has unknown ggml type 1234"});
  expect_error(one("w5", {1, 1, 1, 1, 1}, 0, 0, 4), {"'w5'", "5 dimensions"});
  expect_error(one("zero", {32, 0}, 0, 0, 0), {"'zero'", "dimension 1 = 0"});
  expect_error(one("neg", {32, ~uint64_t{0}}, 0, 0, 0), {"'neg'", "dimension 1"});
  expect_error(one("huge", {uint64_t(1) << 40, uint64_t(1) << 40}, 0, 0, 0), {"'huge'", "overflows"});
  expect_error(one("huge2", {uint64_t(1) << 61, 2}, 0, 0, 0), {"'huge2'"});
  expect_error(one("odd", {48, 2}, 3, 0, 200), {"'odd'", "not a multiple of the block size 32"});
  expect_error(one("k", {128}, 12, 0, 200), {"'k'", "block size 256"});
  expect_error(one("past", {32, 4}, 3, 0, 79), {"'past'", "past the end of the file"});
  expect_error(one("far", {32}, 0, uint64_t(1) << 62, 128), {"'far'", "past the end"});
  expect_error(one("wrap", {32}, 0, ~uint64_t{0} - 31, 128), {"'wrap'"});
  expect_error(one("misaligned", {8}, 0, 4, 64), {"'misaligned'", "not a multiple of the alignment 32"});
  expect_error(Raw().header(2, 0).tensor("same", {8}, 0, 0).tensor("same", {8}, 0, 32).pad().zeros(64).b,
               {"duplicate", "'same'"});
  expect_error(Raw().header(1, 0).tensor("name", {8}, 0, 0).b, {"'name'", "past the end"});  // no data at all
  expect_error(Raw().header(1, 0).u64(100).raw("abc", 3).zeros(30).b, {"name of tensor 0", "length 100"});
}

TEST_CASE("truncating a valid file at every byte offset fails cleanly") {
  for (uint32_t version : {3u, 2u}) {
    const auto full = sample_writer(version, 64).to_bytes();
    CHECK_NOTHROW(GgufFile::from_bytes(full, "full.gguf"));
    for (size_t n = 0; n < full.size(); ++n) {
      std::vector<std::byte> cut(full.begin(), full.begin() + std::ptrdiff_t(n));
      try {
        GgufFile::from_bytes(std::move(cut), "cut.gguf");
        FAIL("truncation to " << n << " of " << full.size() << " bytes parsed");
      } catch (const turbine::Error& e) {
        if (std::string(e.what()).rfind("cut.gguf: ", 0) != 0) FAIL_CHECK(e.what());
      }
    }
  }
}

TEST_CASE("random byte corruption never escapes as anything but turbine::Error") {
  const auto full = sample_writer(3, 32).to_bytes();
  uint64_t s = 42;
  const auto next = [&] { return (s = s * 6364136223846793005ull + 1442695040888963407ull) >> 33; };
  int parsed = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    auto b = full;
    const int flips = 1 + int(next() % 4);
    for (int k = 0; k < flips; ++k) b[next() % 700 % b.size()] = std::byte(next());  // mostly the header
    try {
      const auto f = GgufFile::from_bytes(std::move(b), "fuzz.gguf");
      std::vector<float> row;
      for (const auto& t : f.tensors()) {
        row.resize(size_t(t.cols()));
        turbine::io::dequantize_row(t, 0, row.data());
      }
      ++parsed;
    } catch (const turbine::Error&) {
    }
  }
  MESSAGE(parsed << " of 3000 corrupted files still parsed");
}

TEST_CASE("the default model (SmolLM2-135M-Instruct Q4_1)") {
  const std::string path = turbine::test::default_model_path();
  if (path.empty()) {
    turbine::test::skip("default model not found (tools/fetch_model.sh)");
    return;
  }
  const GgufFile f(path);
  CHECK(f.version() == 3);
  CHECK(f.path() == path);
  CHECK(f.get_string("general.architecture") == "llama");
  CHECK(f.get_int("llama.block_count") == 30);
  CHECK(f.get_int("llama.embedding_length") == 576);
  CHECK(f.get_float("llama.rope.freq_base") == 100000.0);
  CHECK(f.get_string("tokenizer.ggml.model") == "gpt2");
  CHECK_NOTHROW(f.get_bool("tokenizer.ggml.add_bos_token"));
  const auto& tokens = f.get_string_array("tokenizer.ggml.tokens");
  REQUIRE(tokens.size() == 49152);
  CHECK(tokens[0] == "<|endoftext|>");
  CHECK(tokens[1] == "<|im_start|>");
  CHECK(f.get_int_array("tokenizer.ggml.token_type").size() == 49152);

  REQUIRE(f.tensors().size() == 272);
  int q4_1 = 0, f32 = 0, q8_0 = 0;
  for (const auto& t : f.tensors()) {
    q4_1 += t.type == StorageType::Q4_1;
    f32 += t.type == StorageType::F32;
    q8_0 += t.type == StorageType::Q8_0;
    CHECK(t.file == path);
    CHECK(t.nbytes == t.rows() * turbine::row_bytes(t.type, t.cols()));
  }
  CHECK(q4_1 == 210);
  CHECK(f32 == 61);
  CHECK(q8_0 == 1);
  const auto* embd = f.find_tensor("token_embd.weight");
  REQUIRE(embd);
  CHECK(embd->type == StorageType::Q8_0);
  CHECK(embd->shape == std::vector<int64_t>{49152, 576});
  const auto* q = f.find_tensor("blk.0.attn_q.weight");
  REQUIRE(q);
  CHECK(q->type == StorageType::Q4_1);
  CHECK(q->shape == std::vector<int64_t>{576, 576});
  CHECK(q->nbytes == 207360);
  CHECK(f.find_tensor("blk.0.attn_k.weight")->shape == std::vector<int64_t>{192, 576});
  CHECK(f.find_tensor("output_norm.weight")->shape == std::vector<int64_t>{576});
  CHECK(f.data_offset() == 1785664);

  // Expected values from gguf-py 0.19.0:
  //   r = gguf.GGUFReader(path); t = <tensor 'blk.0.attn_q.weight'>
  //   x = gguf.quants.dequantize(t.data, t.tensor_type)   # shape (576, 576)
  //   for row: x[row].sum(), sum(x[row][k] * (k % 7 + 1)), x[row][0], x[row][100], x[row][575] (float64)
  struct Expect {
    int64_t row;
    double sum, weighted, v0, v100, v575;
  };
  const Expect expect[] = {
      {0, 1.00726318359375, 19.5340576171875, -0.0963134765625, 0.214111328125, 0.12353515625},
      {1, -0.71209716796875, 2.154296875, -0.1173095703125, -0.139404296875, 0.47869873046875},
      {575, -4.734954833984375, -26.651153564453125, -0.15679931640625, 0.1810302734375, -0.255859375},
  };
  std::vector<float> row(576);
  for (const auto& e : expect) {
    INFO("row " << e.row);
    turbine::io::dequantize_row(*q, e.row, row.data());
    double sum = 0, weighted = 0;
    for (int k = 0; k < 576; ++k) {
      REQUIRE(std::isfinite(row[k]));
      sum += row[k];
      weighted += double(row[k]) * (k % 7 + 1);
    }
    CHECK(sum == doctest::Approx(e.sum).epsilon(1e-5));
    CHECK(weighted == doctest::Approx(e.weighted).epsilon(1e-5));
    CHECK(row[0] == doctest::Approx(e.v0).epsilon(1e-6).scale(0));
    CHECK(row[100] == doctest::Approx(e.v100).epsilon(1e-6).scale(0));
    CHECK(row[575] == doctest::Approx(e.v575).epsilon(1e-6).scale(0));
  }
  // token_embd row 1, same recipe: sum 0.35922718048095703, element 5 = -0.0079345703125.
  turbine::io::dequantize_row(*embd, 1, row.data());
  double sum = 0;
  for (float v : row) sum += v;
  CHECK(sum == doctest::Approx(0.35922718048095703).epsilon(1e-6));
  CHECK(row[5] == -0.0079345703125f);
}
