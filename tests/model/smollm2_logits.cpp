// The CPU engine against Hugging Face transformers on the default model: logits at every position
// of several prompts (tests/data/smollm2_logits.*, made by tools/make_goldens.py).
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <turbine/turbine.hpp>

#include "test_support.hpp"

using namespace turbine;

TEST_CASE("SmolLM2 logits match transformers at every position") {
  const std::string model_path = test::default_model_path();
  if (model_path.empty()) return test::skip("default model not fetched (tools/fetch_model.sh)");
  std::ifstream jf(test::data_path("smollm2_logits.json"));
  REQUIRE(jf.good());
  const auto golden = nlohmann::json::parse(jf);
  std::ifstream bf(test::data_path("smollm2_logits.bin"), std::ios::binary);
  std::vector<float> ref(golden["total_floats"].get<size_t>());
  bf.read(reinterpret_cast<char*>(ref.data()), static_cast<std::streamsize>(ref.size() * sizeof(float)));
  REQUIRE(bf.gcount() == static_cast<std::streamsize>(ref.size() * sizeof(float)));
  const auto subset = golden["vocab_subset"].get<std::vector<int32_t>>();

  LoadedModel files = load_model(model_path);
  Llama<> model(files.weights);
  for (const auto& p : golden["prompts"]) {
    CAPTURE(p["name"].get<std::string>());
    const auto ids = p["ids"].get<std::vector<int32_t>>();
    auto cache = model.new_cache(512);
    std::vector<float> logits;
    model.forward(cache, ids, logits, /*all_logits=*/true);
    const int64_t vocab = model.config().vocab_size;
    REQUIRE(logits.size() == ids.size() * static_cast<size_t>(vocab));
    const size_t base = p["bin_offset_floats"].get<size_t>();
    double worst = 0;
    for (size_t pos = 0; pos < ids.size(); ++pos) {
      const float* row = logits.data() + pos * vocab;
      const float max_abs = p["max_abs"][pos].get<float>();
      for (size_t j = 0; j < subset.size(); ++j) {
        const float want = ref[base + pos * subset.size() + j];
        const float got = row[subset[j]];
        REQUIRE(std::isfinite(got));
        worst = std::max(worst, std::abs(double(got) - want) / max_abs);
      }
      CHECK(Sampler::argmax(std::span<const float>(row, vocab)) == p["argmax"][pos].get<int32_t>());
    }
    MESSAGE("worst |ours - transformers| / max|logit| = ", worst);
    CHECK(worst < 1e-3);
  }
}

TEST_CASE("a prompt fed in pieces gives the logits of the whole prompt") {
  const std::string model_path = test::default_model_path();
  if (model_path.empty()) return test::skip("default model not fetched (tools/fetch_model.sh)");
  LoadedModel files = load_model(model_path);
  Llama<> model(files.weights);
  const auto ids = files.tokenizer->encode("The quick brown fox jumps over the lazy dog because it can.");
  auto whole = model.new_cache(128), pieces = model.new_cache(128);
  std::vector<float> a, b;
  model.forward(whole, ids, a);
  const size_t half = ids.size() / 2;
  model.forward(pieces, std::span<const int32_t>(ids).first(half), b);
  for (size_t i = half; i < ids.size(); ++i) model.forward(pieces, std::span<const int32_t>(&ids[i], 1), b);
  REQUIRE(a.size() == b.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * double(a[i] - b[i]);
    den += double(a[i]) * a[i];
  }
  CHECK(std::sqrt(num / den) < 1e-5);
}
