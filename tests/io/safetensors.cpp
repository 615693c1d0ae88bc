// Tests io/safetensors.hpp and io/safetensors_writer.hpp: round trips through the writer (one file
// and sharded), every validation error, and a model saved by Hugging Face transformers.
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <unistd.h>

#include <turbine/core/half.hpp>
#include <turbine/io/hf_config.hpp>
#include <turbine/io/hf_tokenizer_config.hpp>
#include <turbine/io/safetensors.hpp>
#include <turbine/io/safetensors_writer.hpp>

#include "test_support.hpp"

namespace fs = std::filesystem;
using namespace turbine;
using turbine::test::contains;
using turbine::test::error_of;
using namespace turbine::io;
using nlohmann::json;

namespace {

// A fresh directory per test case, removed afterwards.
struct TempDir {
  fs::path path;
  TempDir() {
    static int n = 0;
    path = fs::temp_directory_path() / ("turbine_st_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

std::vector<std::byte> to_bytes(const std::string& s) {
  std::vector<std::byte> out(s.size());
  std::memcpy(out.data(), s.data(), s.size());
  return out;
}

// A file image with the given header text and `data_bytes` zero bytes after it.
std::vector<std::byte> image(const std::string& header, size_t data_bytes = 0) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = char(uint64_t(header.size()) >> (8 * i));
  return to_bytes(s + header + std::string(data_bytes, '\0'));
}

std::string parse_error(const std::string& header, size_t data_bytes = 0) {
  return error_of([&] { SafetensorsFile::from_bytes(image(header, data_bytes), "bad.safetensors"); });
}

// A writer with one tensor of each dtype the library uses, plus edge shapes.
SafetensorsWriter sample_writer() {
  SafetensorsWriter w;
  w.add_values<float>("f32", "F32", {2, 3}, {1, 2, 3, 4, 5, 6.5f});
  w.add_values<uint16_t>("f16", "F16", {3}, {f32_to_fp16(1.0f), f32_to_fp16(-2.0f), f32_to_fp16(0.5f)});
  w.add_values<uint16_t>("bf16", "BF16", {1, 2}, {f32_to_bf16(3.0f), f32_to_bf16(-0.25f)});
  w.add_values<int32_t>("qweight", "I32", {2, 2}, {1, -2, 0x12345678, -0x7fffffff});
  w.add_values<uint8_t>("u8", "U8", {5}, {1, 2, 3, 4, 5});  // odd size: later tensors must stay aligned
  w.add_values<float>("scalar", "F32", {}, {42.0f});
  w.add_values<float>("empty", "F32", {0, 4}, {});
  w.set_metadata("format", "pt");
  return w;
}

void check_sample(const SafetensorsFile& f) {
  REQUIRE(f.entries().size() == 7);
  CHECK(f.metadata().at("format") == "pt");
  const RawTensor t = f.tensor("f32");
  CHECK(t.type == StorageType::F32);
  CHECK(t.shape == std::vector<int64_t>{2, 3});
  CHECK(t.nbytes == 24);
  CHECK(t.file == f.path());
  float v[6];
  std::memcpy(v, t.data, sizeof v);
  CHECK(v[5] == 6.5f);
  const RawTensor h = f.tensor("f16");
  CHECK(h.type == StorageType::F16);
  uint16_t hb[3];
  std::memcpy(hb, h.data, sizeof hb);
  CHECK(fp16_to_f32(hb[1]) == -2.0f);
  const RawTensor b = f.tensor("bf16");
  CHECK(b.type == StorageType::BF16);
  uint16_t bb[2];
  std::memcpy(bb, b.data, sizeof bb);
  CHECK(bf16_to_f32(bb[1]) == -0.25f);
  CHECK(f.tensor("scalar").shape.empty());
  CHECK(f.tensor("scalar").numel() == 1);
  CHECK(f.tensor("empty").nbytes == 0);

  const SafetensorsEntry* q = f.find_entry("qweight");
  REQUIRE(q);
  CHECK(q->dtype == "I32");
  CHECK(q->shape == std::vector<int64_t>{2, 2});
  int32_t qv[4];
  std::memcpy(qv, q->data, sizeof qv);
  CHECK(qv[2] == 0x12345678);
  CHECK(qv[3] == -0x7fffffff);
  CHECK_FALSE(f.as_raw(*q).has_value());
  const std::string err = error_of([&] { f.tensor("qweight"); });
  CHECK(err == f.path() + ": tensor 'qweight': dtype I32 cannot be loaded as float weights (supported: F32, F16, BF16)");
  CHECK(contains(error_of([&] { f.tensor("nope"); }), "no tensor 'nope'"));
  CHECK(f.find_entry("nope") == nullptr);
}

uint64_t fnv1a64(const std::byte* p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ std::to_integer<uint8_t>(p[i])) * 0x100000001b3ull;
  return h;
}

}  // namespace

TEST_CASE("safetensors: round trip through the writer, in memory and on disk") {
  const SafetensorsWriter w = sample_writer();
  check_sample(SafetensorsFile::from_bytes(w.to_bytes(), "mem.safetensors"));

  TempDir dir;
  w.write(dir / "one.safetensors");
  const SafetensorsFile f(dir / "one.safetensors");
  check_sample(f);
  CHECK_FALSE(fs::exists(dir / "one.safetensors.tmp"));
  // Widest dtype first: every tensor is aligned to its element size within the mapping.
  for (const auto& e : f.entries())
    CHECK(reinterpret_cast<uintptr_t>(e.data) % safetensors_dtype_bytes(e.dtype) == 0);
}

TEST_CASE("safetensors: a sharded model directory round trips through the index") {
  TempDir dir;
  SafetensorsWriter w;
  std::vector<std::vector<float>> values;
  for (int i = 0; i < 6; ++i) {
    values.push_back(std::vector<float>(10, float(i)));
    w.add_view("layers." + std::to_string(i) + ".weight", "F32", {2, 5}, std::as_bytes(std::span(values.back())));
  }
  w.add_values<int32_t>("layers.0.qweight", "I32", {1, 3}, {7, 8, 9});
  // 40-byte tensors, two per shard; the 12-byte qweight still fits in the third.
  const auto written = w.write_model(dir.path.string(), 100);
  CHECK(written.size() == 4);  // 3 shards + index
  CHECK(written.back() == dir / "model.safetensors.index.json");
  CHECK(fs::exists(dir / "model-00001-of-00003.safetensors"));
  const json index = json::parse(std::ifstream(dir / "model.safetensors.index.json"));
  CHECK(index["metadata"]["total_size"] == 6 * 40 + 12);
  CHECK(index["weight_map"]["layers.0.weight"] == "model-00001-of-00003.safetensors");
  CHECK(index["weight_map"]["layers.0.qweight"] == "model-00003-of-00003.safetensors");

  const SafetensorsModel m(dir.path.string());
  CHECK(m.num_files() == 3);
  const auto names = m.names();
  CHECK(names.size() == 7);
  CHECK(std::is_sorted(names.begin(), names.end()));
  for (int i = 0; i < 6; ++i) {
    const RawTensor* t = m.find("layers." + std::to_string(i) + ".weight");
    REQUIRE(t);
    CHECK(t->shape == std::vector<int64_t>{2, 5});
    float v;
    std::memcpy(&v, t->data + 36, 4);
    CHECK(v == float(i));
  }
  CHECK(m.find("missing") == nullptr);
  CHECK(contains(error_of([&] { m.require("missing"); }), "missing tensor 'missing'"));
  const SafetensorsEntry* q = m.find_entry("layers.0.qweight");
  REQUIRE(q);
  CHECK(q->dtype == "I32");
  CHECK(contains(error_of([&] { m.find("layers.0.qweight"); }), "tensor 'layers.0.qweight': dtype I32 cannot"));
  CHECK(contains(m.file_of("layers.5.weight"), "model-00003-of-00003.safetensors"));

  // The index file itself can be opened too.
  CHECK(SafetensorsModel(dir / "model.safetensors.index.json").names().size() == 7);
}

TEST_CASE("safetensors: an unsharded model directory") {
  TempDir dir;
  const auto written = sample_writer().write_model(dir.path.string(), 1 << 20);
  REQUIRE(written.size() == 1);
  CHECK(written[0] == dir / "model.safetensors");
  const SafetensorsModel m(dir.path.string());
  CHECK(m.num_files() == 1);
  CHECK(m.find("f32")->shape == std::vector<int64_t>{2, 3});
  CHECK(SafetensorsModel(dir / "model.safetensors").names().size() == 7);
}

TEST_CASE("safetensors: every truncation of a file is an error, never a crash") {
  const auto full = sample_writer().to_bytes();
  for (size_t n = 0; n < full.size(); ++n) {
    std::vector<std::byte> cut(full.begin(), full.begin() + n);
    const std::string err = error_of([&] { SafetensorsFile::from_bytes(std::move(cut), "cut.safetensors"); });
    CHECK_MESSAGE(contains(err, "cut.safetensors: "), "prefix of ", n, " bytes");
    CHECK(err.find('\n') == std::string::npos);
  }
}

TEST_CASE("safetensors: malformed headers") {
  CHECK(error_of([] { SafetensorsFile::from_bytes({}, "x.safetensors"); }) ==
        "x.safetensors: too small for a safetensors file (0 bytes)");
  {
    std::vector<std::byte> big = image("{}");
    big[4] = std::byte{1};  // header length 2^32 + 2
    CHECK(contains(error_of([&] { SafetensorsFile::from_bytes(big, "x"); }), "exceeds the limit of 100000000 bytes"));
    big[4] = std::byte{0};
    big[0] = std::byte{3};  // one byte past the end
    CHECK(contains(error_of([&] { SafetensorsFile::from_bytes(big, "x"); }), "header length 3 runs past the end"));
  }
  CHECK(contains(parse_error(""), "bad.safetensors: header: invalid JSON"));
  CHECK(contains(parse_error("{\"a\":"), "bad.safetensors: header: invalid JSON"));
  CHECK(contains(parse_error("[1, 2]"), "bad.safetensors: header is not a JSON object"));
  CHECK(parse_error("{}").empty());  // an empty file is valid
  CHECK(parse_error("{}    ").empty());  // header padding
  CHECK(contains(parse_error(R"({"__metadata__": {"format": 1}})"), "__metadata__ value of 'format' is not a string"));
  CHECK(contains(parse_error(R"({"__metadata__": []})"), "__metadata__ is not a JSON object"));
}

TEST_CASE("safetensors: malformed tensor entries") {
  const std::string p = "bad.safetensors: tensor 'w': ";
  CHECK(parse_error(R"({"w": 5})") == p + "entry is not a JSON object");
  CHECK(parse_error(R"({"w": {"shape": [1], "data_offsets": [0, 4]}})", 4) == p + "'dtype' is missing or not a string");
  CHECK(parse_error(R"({"w": {"dtype": "Q9", "shape": [1], "data_offsets": [0, 4]}})", 4) == p + "unknown dtype 'Q9'");
  CHECK(parse_error(R"({"w": {"dtype": "F32", "shape": 1, "data_offsets": [0, 4]}})", 4) ==
        p + "'shape' is missing or not an array");
  CHECK(parse_error(R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 4) ==
        p + "'shape' holds something other than a non-negative integer");
  CHECK(parse_error(R"({"w": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}})", 4) ==
        p + "'shape' holds something other than a non-negative integer");
  CHECK(parse_error(R"({"w": {"dtype": "F32", "shape": [4611686018427387904, 8], "data_offsets": [0, 4]}})", 4) ==
        p + "shape [4611686018427387904, 8] is too large");
  CHECK(parse_error(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})", 4) ==
        p + "'data_offsets' is missing or not a [begin, end] pair");
  CHECK(parse_error(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, "4"]}})", 4) ==
        p + "'data_offsets' are not non-negative integers");
  CHECK(parse_error(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}})", 4) ==
        p + "data_offsets [4, 0] are out of order");
  CHECK(parse_error(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 8]}})", 4) ==
        p + "data_offsets [0, 8] run past the end of the data section (4 bytes)");
  CHECK(parse_error(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [18446744073709551615, 4]}})", 4) ==
        p + "'data_offsets' are not non-negative integers");
  // dtype and size disagree: 2 BF16 values are 4 bytes, not 8.
  CHECK(parse_error(R"({"w": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 8]}})", 8) ==
        p + "data_offsets [0, 8] hold 8 bytes but dtype BF16 with shape [2] needs 4");
  CHECK(parse_error(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                        "w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})", 8) ==
        p + "data at offset 4 overlaps tensor 'a'");
  // A zero-size tensor inside another's bytes still overlaps it.
  CHECK(contains(parse_error(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                 "w": {"dtype": "F32", "shape": [0], "data_offsets": [4, 4]}})", 8), "overlaps"));
  // Control characters in a name are escaped so the message stays one line.
  const std::string err = parse_error("{\"a\\nb\": 1}");
  CHECK(err == "bad.safetensors: tensor 'a\\x0ab': entry is not a JSON object");
}

TEST_CASE("safetensors: sharded model errors") {
  TempDir dir;
  SafetensorsWriter w;
  for (int i = 0; i < 4; ++i) w.add_values<float>(std::string("t").append(std::to_string(i)), "F32", {4}, {1, 2, 3, 4});
  w.write_model(dir.path.string(), 32);  // two shards
  const std::string index_path = dir / "model.safetensors.index.json";
  auto rewrite_index = [&](const json& j) { std::ofstream(index_path) << j.dump(); };
  const json good = json::parse(std::ifstream(index_path));

  SUBCASE("a listed shard is missing") {
    fs::remove(dir / "model-00002-of-00002.safetensors");
    CHECK(error_of([&] { SafetensorsModel m(dir.path.string()); }) ==
          index_path + ": shard 'model-00002-of-00002.safetensors' (listed for tensor 't2') is missing");
  }
  SUBCASE("a tensor is listed in the wrong shard") {
    json j = good;
    j["weight_map"]["t3"] = "model-00001-of-00002.safetensors";
    rewrite_index(j);
    CHECK(error_of([&] { SafetensorsModel m(dir.path.string()); }) ==
          index_path + ": tensor 't3' is listed in shard 'model-00001-of-00002.safetensors', which does not contain it");
  }
  SUBCASE("a shard outside the directory") {
    json j = good;
    j["weight_map"]["t0"] = "../model-00001-of-00002.safetensors";
    rewrite_index(j);
    CHECK(contains(error_of([&] { SafetensorsModel m(dir.path.string()); }),
                   "tensor 't0': shard '../model-00001-of-00002.safetensors' is not a file name in the model directory"));
  }
  SUBCASE("index is not valid") {
    rewrite_index(json::array());
    CHECK(error_of([&] { SafetensorsModel m(dir.path.string()); }) == index_path + ": not a JSON object");
    rewrite_index(json{{"weight_map", 3}});
    CHECK(contains(error_of([&] { SafetensorsModel m(dir.path.string()); }), "'weight_map' is missing or not an object"));
    rewrite_index(json{{"weight_map", {{"t0", 3}}}});
    CHECK(contains(error_of([&] { SafetensorsModel m(dir.path.string()); }), "tensor 't0': shard is not a string"));
    rewrite_index(json{{"weight_map", json::object()}});
    CHECK(contains(error_of([&] { SafetensorsModel m(dir.path.string()); }), "weight_map lists no tensors"));
    std::ofstream(index_path) << "{\"weight_map\": ";
    CHECK(contains(error_of([&] { SafetensorsModel m(dir.path.string()); }), index_path + ": invalid JSON"));
  }
  SUBCASE("the same tensor in two shards") {
    SafetensorsWriter extra;
    extra.add_values<float>("t0", "F32", {1}, {9});
    extra.add_values<float>("other", "F32", {1}, {9});
    extra.write(dir / "extra.safetensors");
    json j = good;
    j["weight_map"]["other"] = "extra.safetensors";
    rewrite_index(j);
    CHECK(contains(error_of([&] { SafetensorsModel m(dir.path.string()); }), ": tensor 't0' is also in "));
  }
  SUBCASE("a corrupted shard names the shard") {
    std::ofstream(dir / "model-00001-of-00002.safetensors", std::ios::binary) << "garbage";
    CHECK(error_of([&] { SafetensorsModel m(dir.path.string()); }) ==
          dir / "model-00001-of-00002.safetensors" + ": too small for a safetensors file (7 bytes)");
  }
  SUBCASE("no weights in the directory") {
    TempDir empty;
    CHECK(error_of([&] { SafetensorsModel m(empty.path.string()); }) ==
          empty.path.string() + ": no model.safetensors or model.safetensors.index.json in this directory");
    CHECK(contains(error_of([&] { SafetensorsModel m(empty / "nope.safetensors"); }), "cannot open"));
  }
}

TEST_CASE("safetensors writer: bad input") {
  SafetensorsWriter w;
  w.add_values<float>("a", "F32", {1}, {1});
  CHECK(error_of([&] { w.add_values<float>("a", "F32", {1}, {1}); }) == "safetensors writer: tensor 'a': added twice");
  CHECK(error_of([&] { w.add_values<float>("b", "F32", {3}, {1, 2}); }) ==
        "safetensors writer: tensor 'b': 8 bytes given but dtype F32 with shape [3] needs 12");
  CHECK(error_of([&] { w.add_values<float>("b", "F16", {1}, {1}); }) ==
        "safetensors writer: tensor 'b': dtype F16 does not hold 4-byte values");
  CHECK(contains(error_of([&] { w.add("b", "Q4", {1}, {}); }), "unknown dtype 'Q4'"));
  CHECK(contains(error_of([&] { w.add("__metadata__", "U8", {0}, {}); }), "reserved"));
  CHECK(contains(error_of([&] { w.add("b", "U8", {-1}, {}); }), "negative dimension"));
  CHECK(contains(error_of([&] { w.write("/nonexistent-dir/x.safetensors"); }), "/nonexistent-dir/x.safetensors.tmp: cannot create"));
  CHECK(w.size() == 1);
}

TEST_CASE("safetensors: a model saved by Hugging Face transformers (tests/data/tiny_llama)") {
  // Made by tools/make_tiny_hf_model.py: a random bf16 LlamaForCausalLM saved with
  // save_pretrained(safe_serialization=True, max_shard_size="8KB"); checksums.json holds, for each
  // tensor, what torch had in memory (fnv1a64 of its bytes, sum, first values).
  const std::string dir = test::data_path("tiny_llama");
  const json sums = json::parse(std::ifstream(dir + "/checksums.json"));
  const SafetensorsModel m(dir);
  CHECK(m.num_files() == 2);

  std::set<std::string> expected_names;
  for (const auto& item : sums["tensors"].items()) {
    const std::string name = item.key();  // not a structured binding: CAPTURE's lambda needs it
    const json& s = item.value();
    CAPTURE(name);
    expected_names.insert(name);
    const RawTensor* t = m.find(name);
    REQUIRE(t);
    CHECK(t->type == StorageType::BF16);
    CHECK(storage_name(t->type) == s["dtype"].get<std::string>());
    CHECK(t->shape == s["shape"].get<std::vector<int64_t>>());
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv1a64(t->data, t->nbytes)));
    CHECK(std::string(hex) == s["fnv1a64"].get<std::string>());
    double sum = 0;
    std::vector<float> first;
    for (int64_t i = 0; i < t->numel(); ++i) {
      uint16_t bits;
      std::memcpy(&bits, t->data + 2 * i, 2);
      sum += bf16_to_f32(bits);
      if (i < 4) first.push_back(bf16_to_f32(bits));
    }
    CHECK(sum == doctest::Approx(s["sum"].get<double>()).epsilon(1e-9));
    CHECK(first == s["first"].get<std::vector<float>>());
  }
  const auto names = m.names();
  CHECK(std::set<std::string>(names.begin(), names.end()) == expected_names);
  CHECK(names.size() == 21);  // embed + 2 x 9 per layer + norm + lm_head

  const ModelConfig c = load_hf_config(dir);
  CHECK(c.arch == Architecture::Llama);
  CHECK(c.vocab_size == 64);
  CHECK(c.hidden_size == 16);
  CHECK(c.intermediate_size == 32);
  CHECK(c.num_layers == 2);
  CHECK(c.num_heads == 4);
  CHECK(c.num_kv_heads == 2);
  CHECK(c.head_dim == 4);
  CHECK(c.rms_norm_eps == 1e-5f);
  CHECK(c.rope_theta == 10000.0f);  // transformers 5 writes it under rope_parameters
  CHECK(c.rope_scaling.kind == RopeScaling::Kind::None);
  CHECK(m.find("model.embed_tokens.weight")->shape == std::vector<int64_t>{c.vocab_size, c.hidden_size});
  CHECK(m.find("model.layers.1.self_attn.k_proj.weight")->shape == std::vector<int64_t>{c.kv_size(), c.hidden_size});
  const HfGenerationConfig g = load_hf_generation_config(dir);
  CHECK(g.eos_token_ids == std::vector<int64_t>{2});
  CHECK(g.bos_token_id == 1);
}
