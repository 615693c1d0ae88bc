// Every architecture turbine reads from Hugging Face directories, checked against transformers:
// tiny random models made by tools/make_tiny_models.py (tests/data/tiny_models/<name>/), their
// logits at every prompt position and their greedy continuation; the same models as GGUF files
// written by llama.cpp's converter (tools/make_tiny_ggufs.py). Then the ways such a directory
// can be wrong: a config that disagrees with the tensors, a missing tensor, an unknown architecture.
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <turbine/io/hf_config.hpp>
#include <turbine/io/safetensors.hpp>
#include <turbine/io/safetensors_writer.hpp>
#include <turbine/model/assemble_weights.hpp>
#include <turbine/model/load_model.hpp>
#include <turbine/model/transformer.hpp>

#include "test_support.hpp"

using namespace turbine;
namespace fs = std::filesystem;

namespace {

std::string model_dir(const std::string& name) { return test::data_path("tiny_models/" + name); }

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "cannot open ", path, " (run tools/make_tiny_models.py)");
  return nlohmann::json::parse(in);
}

/// What the brief of every Hugging Face loader does: config, safetensors (sharded or not), weights.
ModelWeights load_hf_weights(const std::string& dir, size_t* num_files = nullptr) {
  const ModelConfig c = io::load_hf_config(dir + "/config.json");
  auto st = std::make_shared<io::SafetensorsModel>(dir);
  if (num_files) *num_files = st->num_files();
  ModelWeights w = assemble_weights(c, FileFormat::HuggingFace, [&](const std::string& n) { return st->find(n); }, dir);
  w.keep_alive.push_back(st);
  return w;
}

int32_t argmax(const float* v, int64_t n) { return static_cast<int32_t>(std::max_element(v, v + n) - v); }

struct Golden {
  std::vector<int32_t> ids;
  std::vector<std::vector<float>> logits;  // [tokens][vocab]
  std::vector<int32_t> greedy;
};

Golden read_golden(const std::string& name) {
  const auto j = read_json(model_dir(name) + "/golden.json");
  return {j.at("ids").get<std::vector<int32_t>>(), j.at("logits").get<std::vector<std::vector<float>>>(),
          j.at("greedy").get<std::vector<int32_t>>()};
}

/// Per position t: ||ours - ref|| / ||ref|| and max |ours - ref| / max |ref| (NaN if ours is not finite).
struct PositionError {
  double rel, max_abs_rel;
};
std::vector<PositionError> logit_errors(Llama<>& model, const Golden& g) {
  const int64_t vocab = model.config().vocab_size;
  auto cache = model.new_cache(64);
  std::vector<float> logits;  // [tokens, vocab]
  model.forward(cache, g.ids, logits, /*all_logits=*/true);
  REQUIRE(logits.size() == g.ids.size() * static_cast<size_t>(vocab));
  std::vector<PositionError> out;
  for (size_t t = 0; t < g.ids.size(); ++t) {
    const std::vector<float>& ref = g.logits[t];
    REQUIRE(static_cast<int64_t>(ref.size()) == vocab);
    const float* ours = logits.data() + t * vocab;
    double diff2 = 0, ref2 = 0, max_diff = 0, max_ref = 0;
    bool finite = true;
    for (int64_t v = 0; v < vocab; ++v) {
      finite = finite && std::isfinite(ours[v]);
      const double d = double(ours[v]) - double(ref[v]);
      diff2 += d * d;
      ref2 += double(ref[v]) * ref[v];
      max_diff = std::max(max_diff, std::abs(d));
      max_ref = std::max(max_ref, std::abs(double(ref[v])));
    }
    const double nan = std::nan("");
    out.push_back({finite ? std::sqrt(diff2 / ref2) : nan, finite ? max_diff / max_ref : nan});
  }
  return out;
}

/// Logits at every position within ||ours - ref|| / ||ref|| < 1e-4 and max |ours - ref| < 1e-3 max |ref|;
/// then the greedy continuation, one token per forward() on the cache, equal to transformers'.
void check_against_transformers(const std::string& name, Llama<>& model) {
  const Golden g = read_golden(name);
  const int64_t vocab = model.config().vocab_size;
  REQUIRE(g.ids.size() == 24);
  REQUIRE(g.logits.size() == g.ids.size());

  double worst_rel = 0, worst_abs = 0;
  const auto errors = logit_errors(model, g);
  for (size_t t = 0; t < errors.size(); ++t) {
    CAPTURE(name);
    CAPTURE(t);
    CHECK(errors[t].rel < 1e-4);  // NaN fails
    CHECK(errors[t].max_abs_rel < 1e-3);
    worst_rel = std::max(worst_rel, errors[t].rel);
    worst_abs = std::max(worst_abs, errors[t].max_abs_rel);
  }
  MESSAGE(name, ": worst per-position relative error ", worst_rel, ", worst max|diff|/max|ref| ", worst_abs);

  // Greedy decoding from a fresh cache: prefill, then one token at a time.
  auto gen_cache = model.new_cache(64);
  std::vector<float> last;  // [vocab]
  model.forward(gen_cache, g.ids, last);
  std::vector<int32_t> ours;
  while (ours.size() < g.greedy.size()) {
    ours.push_back(argmax(last.data(), vocab));
    if (ours.size() < g.greedy.size()) model.forward(gen_cache, std::vector<int32_t>{ours.back()}, last);
  }
  CAPTURE(name);
  CHECK(ours == g.greedy);
}

/// A copy of a tiny model in a private temporary directory, removed at the end of the test.
struct TempModel {
  std::string dir;
  explicit TempModel(const std::string& tag) {
    dir = (fs::temp_directory_path() / ("turbine_hf_arch_" + std::to_string(::getpid()) + "_" + tag)).string();
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  TempModel(const std::string& tag, const std::string& source) : TempModel(tag) {
    for (const auto& e : fs::directory_iterator(model_dir(source))) fs::copy_file(e.path(), fs::path(dir) / e.path().filename());
  }
  ~TempModel() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string config() const { return dir + "/config.json"; }
  void edit_config(const std::function<void(nlohmann::json&)>& edit) const {
    auto j = read_json(config());
    edit(j);
    std::ofstream(config()) << j.dump(2);
  }
};

/// Runs `f`, which must throw a one-line turbine::Error containing every one of `parts`.
void expect_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
    FAIL("no error; expected one naming ", parts.front());
  } catch (const Error& e) {
    const std::string msg = e.what();
    CAPTURE(msg);
    for (const auto& p : parts) CHECK_MESSAGE(msg.find(p) != std::string::npos, "missing '", p, "'");
    CHECK(msg.find('\n') == std::string::npos);
    MESSAGE(msg);
  }
}

}  // namespace

TEST_CASE("llama, tied embeddings, bf16: matches transformers") {
  ModelWeights w = load_hf_weights(model_dir("llama_tied"));
  const ModelConfig& c = w.config;
  CHECK(c.arch == Architecture::Llama);
  CHECK(c.tie_word_embeddings);
  CHECK_FALSE(c.attention_bias);
  CHECK(c.rope_scaling.kind == RopeScaling::Kind::None);
  CHECK(c.sliding_window == 0);
  CHECK(c.hidden_size == 64);
  CHECK(c.head_dim == 16);
  CHECK(c.num_heads == 4);
  CHECK(c.num_kv_heads == 2);
  CHECK(c.vocab_size == 128);
  CHECK(w.embed.type == StorageType::BF16);
  CHECK(w.lm_head.data == w.embed.data);  // the file has no lm_head.weight
  Llama<> model(std::move(w));
  check_against_transformers("llama_tied", model);
}

TEST_CASE("llama, untied, llama3 rope scaling, f16, sharded: matches transformers") {
  size_t files = 0;
  ModelWeights w = load_hf_weights(model_dir("llama_untied"), &files);
  CHECK(files == 3);  // through model.safetensors.index.json
  const ModelConfig& c = w.config;
  CHECK(c.arch == Architecture::Llama);
  CHECK_FALSE(c.tie_word_embeddings);
  CHECK_FALSE(c.attention_bias);
  CHECK(c.rope_scaling.kind == RopeScaling::Kind::Llama3);
  CHECK(c.rope_scaling.factor == 8.0f);
  CHECK(c.rope_scaling.low_freq_factor == 1.0f);
  CHECK(c.rope_scaling.high_freq_factor == 4.0f);
  CHECK(c.rope_scaling.original_max_position_embeddings == 32);
  CHECK(c.max_position_embeddings == 256);
  CHECK(w.embed.type == StorageType::F16);
  CHECK(w.lm_head.data != w.embed.data);
  Llama<> model(std::move(w));
  check_against_transformers("llama_untied", model);
}

TEST_CASE("qwen2, q/k/v bias, 4 query heads per KV head, f32: matches transformers") {
  ModelWeights w = load_hf_weights(model_dir("qwen2"));
  const ModelConfig& c = w.config;
  CHECK(c.arch == Architecture::Qwen2);
  CHECK(c.attention_bias);
  CHECK_FALSE(c.tie_word_embeddings);
  CHECK(c.rope_scaling.kind == RopeScaling::Kind::None);
  CHECK(c.sliding_window == 0);
  CHECK(c.num_heads == 4);
  CHECK(c.num_kv_heads == 1);
  CHECK(w.embed.type == StorageType::F32);
  REQUIRE(w.layers.size() == 2);
  CHECK(w.layers[0].bq.size() == 64);
  CHECK(w.layers[0].bk.size() == 16);
  CHECK(w.layers[0].bv.size() == 16);
  Llama<> model(std::move(w));
  check_against_transformers("qwen2", model);
}

TEST_CASE("mistral, sliding window 8 over a 24-token prompt, bf16: matches transformers") {
  ModelWeights w = load_hf_weights(model_dir("mistral"));
  const ModelConfig& c = w.config;
  CHECK(c.arch == Architecture::Mistral);
  CHECK(c.sliding_window == 8);
  CHECK_FALSE(c.attention_bias);
  CHECK_FALSE(c.tie_word_embeddings);
  CHECK(c.rope_scaling.kind == RopeScaling::Kind::None);
  Llama<> model(std::move(w));
  check_against_transformers("mistral", model);
}

TEST_CASE("internlm2, fused wqkv grouped by KV head, bf16: matches the source llama in transformers") {
  ModelWeights w = load_hf_weights(model_dir("internlm2"));
  const ModelConfig& c = w.config;
  CHECK(c.arch == Architecture::InternLM2);
  CHECK_FALSE(c.attention_bias);  // "bias": false (InternLM2Config defaults to true)
  CHECK_FALSE(c.tie_word_embeddings);
  CHECK(c.rope_scaling.kind == RopeScaling::Kind::None);
  CHECK(c.num_heads == 4);
  CHECK(c.num_kv_heads == 2);
  CHECK(c.head_dim == 16);
  Llama<> model(std::move(w));
  check_against_transformers("internlm2", model);
}

TEST_CASE("a config whose sizes disagree with the tensors names the file and the tensor") {
  SUBCASE("hidden_size") {
    TempModel m("hidden", "mistral");
    m.edit_config([](nlohmann::json& j) { j["hidden_size"] = 32; });  // head_dim stays 16
    expect_error([&] { (void)load_hf_weights(m.dir); },
                 {m.dir + "/model.safetensors", "'model.embed_tokens.weight'", "[128, 64]", "[128, 32]"});
  }
  SUBCASE("intermediate_size, in a sharded model") {
    TempModel m("inter", "llama_untied");
    m.edit_config([](nlohmann::json& j) { j["intermediate_size"] = 80; });
    expect_error([&] { (void)load_hf_weights(m.dir); },
                 {m.dir + "/model-0000", "'model.layers.0.mlp.", "[96, 64]"});
  }
  SUBCASE("num_key_value_heads of internlm2 (the fused wqkv)") {
    TempModel m("wqkv", "internlm2");
    m.edit_config([](nlohmann::json& j) { j["num_key_value_heads"] = 4; });
    expect_error([&] { (void)load_hf_weights(m.dir); },
                 {m.dir + "/model.safetensors", "'model.layers.0.attention.wqkv.weight'", "[128, 64]", "[192, 64]"});
  }
  SUBCASE("num_key_value_heads of qwen2") {
    TempModel m("kv", "qwen2");
    m.edit_config([](nlohmann::json& j) { j["num_key_value_heads"] = 2; });
    expect_error([&] { (void)load_hf_weights(m.dir); }, {m.dir + "/model.safetensors", "'model.layers.0.self_attn.k_proj.weight'"});
  }
}

TEST_CASE("a missing tensor is named") {
  // Rewrites llama_untied (sharded) without one tensor, through turbine's own writer.
  auto rewrite_without = [](const TempModel& m, const std::string& skip) {
    io::SafetensorsModel src(model_dir("llama_untied"));
    io::SafetensorsWriter writer;
    size_t kept = 0;
    for (const auto& n : src.names()) {
      if (n == skip) continue;
      const io::SafetensorsEntry* e = src.find_entry(n);
      writer.add(n, e->dtype, e->shape, std::span<const std::byte>(e->data, e->nbytes));
      ++kept;
    }
    REQUIRE(kept + 1 == src.names().size());
    writer.write_model(m.dir, 60 * 1024);
    fs::copy_file(model_dir("llama_untied") + "/config.json", m.config());
  };
  SUBCASE("a layer weight") {
    TempModel m("missing_up");
    rewrite_without(m, "model.layers.1.mlp.up_proj.weight");
    CHECK(fs::exists(m.dir + "/model.safetensors.index.json"));
    expect_error([&] { (void)load_hf_weights(m.dir); }, {m.dir, "'model.layers.1.mlp.up_proj.weight'", "missing"});
  }
  SUBCASE("lm_head.weight of an untied model") {
    TempModel m("missing_head");
    rewrite_without(m, "lm_head.weight");
    expect_error([&] { (void)load_hf_weights(m.dir); }, {m.dir, "'lm_head.weight'", "tie"});
  }
  SUBCASE("internlm2's wqkv") {
    TempModel m("missing_wqkv");
    io::SafetensorsModel src(model_dir("internlm2"));
    io::SafetensorsWriter writer;
    for (const auto& n : src.names()) {
      if (n == "model.layers.0.attention.wqkv.weight") continue;
      const io::SafetensorsEntry* e = src.find_entry(n);
      writer.add(n, e->dtype, e->shape, std::span<const std::byte>(e->data, e->nbytes));
    }
    writer.write_model(m.dir);
    fs::copy_file(model_dir("internlm2") + "/config.json", m.config());
    expect_error([&] { (void)load_hf_weights(m.dir); }, {m.dir, "'model.layers.0.attention.wqkv.weight'", "internlm2"});
  }
}

TEST_CASE("an unknown architecture in config.json names the field") {
  TempModel m("arch", "qwen2");
  m.edit_config([](nlohmann::json& j) { j["architectures"] = {"GPT2LMHeadModel"}; });
  expect_error([&] { (void)load_hf_weights(m.dir); }, {m.config(), "'architectures'", "not supported"});
  m.edit_config([](nlohmann::json& j) { j.erase("architectures"); });
  expect_error([&] { (void)load_hf_weights(m.dir); }, {m.config(), "'architectures'"});
}

// The goldens must be able to catch the features they stand for: with the feature switched off in
// turbine, the same weights must miss the reference by far more than the tolerance.
TEST_CASE("the goldens depend on the sliding window and on llama3 rope scaling") {
  auto worst_after = [](Llama<>& model, const std::string& name, size_t from) {
    const auto errors = logit_errors(model, read_golden(name));
    double worst = 0;
    for (size_t t = from; t < errors.size(); ++t) worst = std::max(worst, errors[t].rel);
    return worst;
  };
  {
    ModelWeights w = load_hf_weights(model_dir("mistral"));
    w.config.sliding_window = 0;
    Llama<> model(std::move(w));
    CHECK(worst_after(model, "mistral", 0) > 1e-2);
    const auto errors = logit_errors(model, read_golden("mistral"));
    for (size_t t = 0; t < 8; ++t) CHECK(errors[t].rel < 1e-4);  // the window only matters from position 8
  }
  {
    ModelWeights w = load_hf_weights(model_dir("llama_untied"));
    w.config.rope_scaling = RopeScaling{};
    Llama<> model(std::move(w));
    CHECK(worst_after(model, "llama_untied", 1) > 1e-2);
  }
}

// The same models as GGUF files from llama.cpp's own converter (convert_hf_to_gguf.py, see
// tools/make_tiny_ggufs.py): its q/k row order for Llama, Llama 3's scaling as a rope_freqs tensor
// of divisors, Qwen2's biases, InternLM2's wqkv split into q/k/v. Same goldens, same tolerances.
TEST_CASE("GGUF files written by llama.cpp's converter match transformers") {
  struct Case {
    std::string name;
    Architecture arch;
    StorageType type;
  };
  for (const Case& k : {Case{"llama_tied", Architecture::Llama, StorageType::BF16},
                        Case{"llama_untied", Architecture::Llama, StorageType::F16},
                        Case{"qwen2", Architecture::Qwen2, StorageType::F32},
                        Case{"internlm2", Architecture::InternLM2, StorageType::BF16}}) {
    CAPTURE(k.name);
    ModelWeights w = turbine::load_weights(model_dir(k.name) + "/model.gguf");
    const ModelWeights hf = load_hf_weights(model_dir(k.name));
    const ModelConfig& c = w.config;
    CHECK(c.arch == k.arch);
    CHECK(w.embed.type == k.type);
    CHECK(c.tie_word_embeddings == hf.config.tie_word_embeddings);
    CHECK(c.attention_bias == hf.config.attention_bias);
    CHECK(c.num_heads == hf.config.num_heads);
    CHECK(c.num_kv_heads == hf.config.num_kv_heads);
    CHECK(c.head_dim == hf.config.head_dim);
    CHECK(c.rms_norm_eps == hf.config.rms_norm_eps);
    CHECK(c.rope_theta == hf.config.rope_theta);
    // rope_freqs for the llama3-scaled model; its 8 frequencies leave one in the medium band,
    // too few to name the llama3 parameters, so the divisors are kept as they are.
    CHECK(c.rope_scaling.kind == (k.name == "llama_untied" ? RopeScaling::Kind::Factors : RopeScaling::Kind::None));
    const auto hf_inv = rope_inv_freq(hf.config, 24), gguf_inv = rope_inv_freq(c, 24);
    REQUIRE(hf_inv.size() == gguf_inv.size());
    for (size_t i = 0; i < hf_inv.size(); ++i) CHECK(gguf_inv[i] == doctest::Approx(hf_inv[i]).epsilon(1e-6));
    Llama<> model(std::move(w));
    check_against_transformers(k.name, model);
  }
}

namespace {
/// llama.cpp's converter's divisors for HF llama3 rope_scaling (conversion/llama.py,
/// generate_extra_tensors): float32 frequencies, the band arithmetic mostly in double here (in
/// float32 there for the wavelength; far below the tolerances), stored as float32.
std::vector<float> llama_cpp_rope_factors(double base, int64_t dim, double factor, double low, double high, double original) {
  std::vector<float> out;
  for (int64_t i = 0; i < dim; i += 2) {
    const float freq = 1.0f / std::pow(static_cast<float>(base), static_cast<float>(i) / static_cast<float>(dim));
    const double wavelen = 2 * M_PI / freq;
    if (wavelen < original / high) out.push_back(1.0f);
    else if (wavelen > original / low) out.push_back(static_cast<float>(factor));
    else {
      const double smooth = (original / wavelen - low) / (high - low);
      out.push_back(static_cast<float>(1 / ((1 - smooth) / factor + smooth)));
    }
  }
  return out;
}
}  // namespace

TEST_CASE("rope_freqs divisors name their llama3 parameters when they follow the formula") {
  struct Model {
    const char* name;
    double base;
    int64_t dim;
    float factor, low, high;
    int64_t original;
  };
  for (const Model& m : {Model{"Llama 3.1 8B", 500000, 128, 8, 1, 4, 8192}, Model{"Llama 3.2 1B", 500000, 64, 32, 1, 4, 8192},
                         Model{"a 2048-token original, high 8", 10000, 128, 4, 1, 8, 2048}}) {
    CAPTURE(m.name);
    const auto factors = llama_cpp_rope_factors(m.base, m.dim, m.factor, m.low, m.high, static_cast<double>(m.original));
    const RopeScaling r = rope_scaling_from_factors(m.base, m.dim, factors);
    REQUIRE(r.kind == RopeScaling::Kind::Llama3);
    CHECK(r.factor == m.factor);
    CHECK(r.low_freq_factor == m.low);
    CHECK(r.high_freq_factor == m.high);
    CHECK(r.original_max_position_embeddings == m.original);
    // And the frequencies are those of the divisors.
    ModelConfig c;
    c.head_dim = m.dim;
    c.rope_theta = static_cast<float>(m.base);
    c.rope_scaling = r;
    const auto llama3 = rope_inv_freq(c, 1);
    c.rope_scaling = RopeScaling{};
    c.rope_scaling.kind = RopeScaling::Kind::Factors;
    c.rope_scaling.freq_factors = factors;
    const auto divided = rope_inv_freq(c, 1);
    for (size_t i = 0; i < llama3.size(); ++i) CHECK(llama3[i] == doctest::Approx(divided[i]).epsilon(1e-5));
  }
  SUBCASE("divisors that are not the formula are kept as given; all ones are no scaling") {
    std::vector<float> odd(64, 1.0f);
    for (size_t i = 32; i < 64; ++i) odd[i] = 1.0f + static_cast<float>(i % 5);
    const RopeScaling r = rope_scaling_from_factors(500000, 128, odd);
    CHECK(r.kind == RopeScaling::Kind::Factors);
    CHECK(r.freq_factors == odd);
    CHECK(rope_scaling_from_factors(500000, 128, std::vector<float>(64, 1.0f)).kind == RopeScaling::Kind::None);
  }
}
