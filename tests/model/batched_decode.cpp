// decode_batch: several sequences decoded in one pass over the weights get bit for bit the logits
// each gets alone from Transformer::forward, on every architecture (tiny random models: tied and
// untied Llama with llama3 rope scaling, Qwen2 biases, Mistral's sliding window, InternLM2).
#include <doctest/doctest.h>

#include <cstring>
#include <random>

#include <turbine/io/hf_config.hpp>
#include <turbine/io/safetensors.hpp>
#include <turbine/model/assemble_weights.hpp>
#include <turbine/engine/sampler.hpp>
#include <turbine/model/batched_decode.hpp>

#include "test_support.hpp"

using namespace turbine;

namespace {

Llama<> load_tiny(const std::string& name) {
  const std::string dir = test::data_path("tiny_models/" + name);
  const ModelConfig c = io::load_hf_config(dir + "/config.json");
  auto st = std::make_shared<io::SafetensorsModel>(dir);
  ModelWeights w = assemble_weights(c, FileFormat::HuggingFace, [&](const std::string& n) { return st->find(n); }, dir);
  w.keep_alive.push_back(st);
  return Llama<>(std::move(w));
}

bool same_bits(const float* a, const float* b, size_t n) { return std::memcmp(a, b, n * sizeof(float)) == 0; }

}  // namespace

TEST_CASE("decode_batch equals one forward() per sequence, bit for bit") {
  for (const char* name : {"llama_tied", "llama_untied", "qwen2", "mistral", "internlm2"}) {
    CAPTURE(name);
    Llama<> model = load_tiny(name);
    const int64_t vocab = model.config().vocab_size;
    for (int64_t n = 1; n <= kExactDecodeBatch; ++n) {
      CAPTURE(n);
      std::mt19937 rng(static_cast<unsigned>(n));
      std::vector<HostKvCache> alone, together;
      std::vector<int32_t> next(static_cast<size_t>(n));
      std::vector<float> logits;
      for (int64_t i = 0; i < n; ++i) {  // prompts of different lengths: different positions per row
        std::vector<int32_t> prompt(static_cast<size_t>(3 + 5 * i));
        for (auto& t : prompt) t = std::uniform_int_distribution<int32_t>(0, static_cast<int32_t>(vocab) - 1)(rng);
        alone.push_back(model.new_cache(64));
        together.push_back(model.new_cache(64));
        model.forward(alone.back(), prompt, logits);
        model.forward(together.back(), prompt, logits);
        next[static_cast<size_t>(i)] = Sampler::argmax(logits);
      }
      BatchedDecodeScratch scratch;
      std::vector<float> batch_logits, one;
      for (int step = 0; step < 12; ++step) {  // past Mistral's window of 8
        std::vector<HostKvCache*> caches;
        for (auto& c : together) caches.push_back(&c);
        decode_batch(model, std::span<HostKvCache* const>(caches), next, batch_logits, scratch);
        for (int64_t i = 0; i < n; ++i) {
          model.forward(alone[static_cast<size_t>(i)], std::span<const int32_t>(&next[static_cast<size_t>(i)], 1), one);
          REQUIRE(same_bits(one.data(), batch_logits.data() + i * vocab, static_cast<size_t>(vocab)));
          CHECK(alone[static_cast<size_t>(i)].length() == together[static_cast<size_t>(i)].length());
          next[static_cast<size_t>(i)] = Sampler::argmax(one);
        }
      }
    }
  }
}

TEST_CASE("decode_batch refuses more rows than it can keep exact, or mismatched inputs") {
  Llama<> model = load_tiny("llama_tied");
  std::vector<HostKvCache> caches;
  for (int i = 0; i < 5; ++i) caches.push_back(model.new_cache(16));
  std::vector<HostKvCache*> ptrs;
  for (auto& c : caches) ptrs.push_back(&c);
  BatchedDecodeScratch scratch;
  std::vector<float> logits;
  const std::vector<int32_t> five{1, 2, 3, 4, 5};
  CHECK_THROWS_AS(decode_batch(model, std::span<HostKvCache* const>(ptrs), five, logits, scratch), Error);
  CHECK_THROWS_AS(decode_batch(model, std::span<HostKvCache* const>(ptrs.data(), 2), std::span<const int32_t>(five.data(), 3), logits,
                               scratch),
                  Error);
}
