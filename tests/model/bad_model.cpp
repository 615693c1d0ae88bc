// A model file that parses but does not describe a model turbine can run: each problem is a
// one-line error naming the file and the tensor or field.
#include <doctest/doctest.h>

#include <filesystem>
#include <functional>
#include <map>
#include <turbine/io/gguf_writer.hpp>
#include <turbine/model/load_model.hpp>
#include <turbine/model/transformer.hpp>

using namespace turbine;

namespace {

/// A complete, tiny llama GGUF (2 layers, hidden 8, vocab 16) that `tweak` can spoil.
/// `meta` overrides metadata values; tensors named in `skip` are left out (the tweak may add its own).
std::string write_tiny_gguf(const std::string& name, const std::function<void(io::GgufWriter&, std::vector<std::string>&)>& tweak = {},
                            std::map<std::string, io::GgufValue> meta = {}) {
  io::GgufWriter w;
  std::vector<std::string> skip;
  std::map<std::string, io::GgufValue> defaults{
      {"general.architecture", io::GgufValue::string("llama")},
      {"llama.block_count", io::GgufValue::u32(2)},
      {"llama.embedding_length", io::GgufValue::u32(8)},
      {"llama.feed_forward_length", io::GgufValue::u32(12)},
      {"llama.attention.head_count", io::GgufValue::u32(2)},
      {"llama.attention.head_count_kv", io::GgufValue::u32(1)},
      {"llama.context_length", io::GgufValue::u32(64)},
      {"llama.attention.layer_norm_rms_epsilon", io::GgufValue::f32(1e-5f)},
      {"tokenizer.ggml.model", io::GgufValue::string("gpt2")},
  };
  for (auto& [k, v] : meta) defaults[k] = v;
  for (auto& [k, v] : defaults) w.add(k, v);
  std::vector<std::string> tokens;
  for (int i = 0; i < 16; ++i) tokens.push_back(std::string(1, char('a' + i)));
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  w.add_string_array("tokenizer.ggml.merges", {});
  if (tweak) tweak(w, skip);
  auto tensor = [&](const std::string& n, std::vector<int64_t> shape) {
    if (std::find(skip.begin(), skip.end(), n) != skip.end()) return;
    int64_t count = 1;
    for (auto d : shape) count *= d;
    std::vector<float> v(static_cast<size_t>(count), 0.01f);
    w.add_tensor_f32(n, shape, v);
  };
  tensor("token_embd.weight", {16, 8});
  tensor("output_norm.weight", {8});
  for (int l = 0; l < 2; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    tensor(b + "attn_norm.weight", {8});
    tensor(b + "attn_q.weight", {8, 8});
    tensor(b + "attn_k.weight", {4, 8});
    tensor(b + "attn_v.weight", {4, 8});
    tensor(b + "attn_output.weight", {8, 8});
    tensor(b + "ffn_norm.weight", {8});
    tensor(b + "ffn_gate.weight", {12, 8});
    tensor(b + "ffn_up.weight", {12, 8});
    tensor(b + "ffn_down.weight", {8, 12});
  }
  const std::string path = (std::filesystem::temp_directory_path() / name).string();
  w.write(path);
  return path;
}

void expect_error(const std::string& path, const std::string& part1, const std::string& part2) {
  try {
    (void)load_model(path);
    FAIL("no error for ", path);
  } catch (const Error& e) {
    const std::string msg = e.what();
    CAPTURE(msg);
    CHECK(msg.find(std::filesystem::path(path).filename().string()) != std::string::npos);
    CHECK(msg.find(part1) != std::string::npos);
    CHECK(msg.find(part2) != std::string::npos);
    CHECK(msg.find('\n') == std::string::npos);
  }
}

}  // namespace

TEST_CASE("the tiny model itself loads and runs") {
  const std::string path = write_tiny_gguf("turbine_ok.gguf");
  LoadedModel m = load_model(path);
  CHECK(m.config.num_layers == 2);
  CHECK(m.config.tie_word_embeddings);
  Llama<> model(m.weights);
  auto cache = model.new_cache();
  std::vector<float> logits;
  const std::vector<int32_t> ids{1, 2, 3};
  model.forward(cache, ids, logits);
  CHECK(logits.size() == 16);
}

TEST_CASE("a missing tensor is named") {
  expect_error(write_tiny_gguf("turbine_missing.gguf", [](auto&, auto& skip) { skip.push_back("blk.1.ffn_up.weight"); }),
               "blk.1.ffn_up.weight", "missing");
}

TEST_CASE("a tensor whose shape disagrees with the config is named with both shapes") {
  expect_error(write_tiny_gguf("turbine_shape.gguf", [](io::GgufWriter& w, auto& skip) {
                 skip.push_back("blk.0.attn_k.weight");
                 std::vector<float> v(6 * 8, 0.f);
                 w.add_tensor_f32("blk.0.attn_k.weight", {6, 8}, v);
               }),
               "blk.0.attn_k.weight", "[6, 8]");
}

TEST_CASE("an unknown architecture is named") {
  expect_error(write_tiny_gguf("turbine_arch.gguf", {}, {{"general.architecture", io::GgufValue::string("gptx")}}),
               "general.architecture", "gptx");
}

TEST_CASE("a missing required field is named") {
  io::GgufWriter w;
  w.add_string("general.architecture", "llama");
  const std::string path = (std::filesystem::temp_directory_path() / "turbine_fields.gguf").string();
  w.write(path);
  expect_error(path, "llama.block_count", "");
}

TEST_CASE("heads that do not divide are rejected") {
  expect_error(write_tiny_gguf("turbine_heads.gguf", {}, {{"llama.attention.head_count_kv", io::GgufValue::u32(3)}}),
               "head_count", "3");
}

TEST_CASE("a rope_freqs tensor of the wrong size, or with a divisor that is not positive, is named") {
  // head dim 4: two rotary frequencies, so two divisors.
  expect_error(write_tiny_gguf("turbine_rope_freqs_shape.gguf", [](io::GgufWriter& w, auto&) {
                 w.add_tensor_f32("rope_freqs.weight", {3}, std::vector<float>{1.f, 2.f, 4.f});
               }),
               "rope_freqs.weight", "[2]");
  expect_error(write_tiny_gguf("turbine_rope_freqs_zero.gguf", [](io::GgufWriter& w, auto&) {
                 w.add_tensor_f32("rope_freqs.weight", {2}, std::vector<float>{1.f, 0.f});
               }),
               "rope_freqs.weight", "positive");
  const LoadedModel ok = load_model(write_tiny_gguf("turbine_rope_freqs_ok.gguf", [](io::GgufWriter& w, auto&) {
    w.add_tensor_f32("rope_freqs.weight", {2}, std::vector<float>{1.f, 3.f});
  }));
  CHECK(ok.config.rope_scaling.kind == RopeScaling::Kind::Factors);
  CHECK(ok.config.rope_scaling.freq_factors == std::vector<float>{1.f, 3.f});
}

TEST_CASE("partial rotary embeddings and mixture-of-experts files are refused by name") {
  expect_error(write_tiny_gguf("turbine_partial_rope.gguf", {}, {{"llama.rope.dimension_count", io::GgufValue::u32(2)}}),
               "rope.dimension_count", "partial rotary");
  expect_error(write_tiny_gguf("turbine_experts.gguf", {}, {{"llama.expert_count", io::GgufValue::u32(8)}}),
               "expert_count", "mixture-of-experts");
}
