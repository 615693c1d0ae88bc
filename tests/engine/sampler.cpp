// Sampling: greedy, temperature, top-k, top-p, min-p, repetition penalty, seeds.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <turbine/engine/sampler.hpp>

using namespace turbine;

namespace {
std::vector<float> logits_of(std::initializer_list<float> l) { return std::vector<float>(l); }

std::map<int32_t, int> histogram(GenerationConfig cfg, const std::vector<float>& logits, int draws) {
  std::map<int32_t, int> h;
  Sampler s(cfg);
  for (int i = 0; i < draws; ++i) {
    auto copy = logits;
    h[s.sample(copy, {})]++;
  }
  return h;
}
}  // namespace

TEST_CASE("greedy picks the argmax, the first of ties") {
  GenerationConfig cfg;
  Sampler s(cfg);
  auto l = logits_of({0.1f, 3.0f, -2.0f, 3.0f});
  CHECK(s.sample(l, {}) == 1);
}

TEST_CASE("top-k 2 only ever draws the two best tokens, in proportion to their probabilities") {
  GenerationConfig cfg;
  cfg.temperature = 1.0f;
  cfg.top_k = 2;
  cfg.seed = 7;
  const auto h = histogram(cfg, logits_of({1.0f, 2.0f, 0.0f, 2.0f - std::log(3.0f)}), 4000);
  CHECK(h.size() == 2);
  CHECK(h.count(0) == 1);
  CHECK(h.count(1) == 1);
  // p(1)/p(0) = e
  CHECK(double(h.at(1)) / h.at(0) == doctest::Approx(std::exp(1.0)).epsilon(0.12));
}

TEST_CASE("top-p keeps the smallest set reaching the mass") {
  GenerationConfig cfg;
  cfg.temperature = 1.0f;
  cfg.top_p = 0.6f;  // probs 0.5, 0.3, 0.2: keeps the first two
  cfg.seed = 3;
  const auto h = histogram(cfg, logits_of({std::log(0.2f), std::log(0.5f), std::log(0.3f)}), 3000);
  CHECK(h.count(0) == 0);
  CHECK(h.count(1) == 1);
  CHECK(h.count(2) == 1);
  CHECK(double(h.at(1)) / h.at(2) == doctest::Approx(5.0 / 3.0).epsilon(0.12));
}

TEST_CASE("min-p drops tokens below the fraction of the best") {
  GenerationConfig cfg;
  cfg.temperature = 1.0f;
  cfg.min_p = 0.5f;  // probs 0.5, 0.3, 0.2: 0.2 < 0.25 is dropped, 0.3 kept
  const auto h = histogram(cfg, logits_of({std::log(0.5f), std::log(0.3f), std::log(0.2f)}), 2000);
  CHECK(h.count(2) == 0);
  CHECK(h.count(1) == 1);
}

TEST_CASE("low temperature sharpens, high temperature flattens") {
  GenerationConfig cold, hot;
  cold.temperature = 0.05f;
  hot.temperature = 50.0f;
  const auto l = logits_of({1.0f, 1.5f, 0.5f});
  CHECK(histogram(cold, l, 500).at(1) == 500);
  CHECK(histogram(hot, l, 3000).size() == 3);
}

TEST_CASE("the same seed gives the same draws; another seed differs") {
  GenerationConfig cfg;
  cfg.temperature = 1.0f;
  std::vector<float> l(100);
  for (int i = 0; i < 100; ++i) l[i] = std::sin(float(i));
  auto draws = [&](uint64_t seed) {
    cfg.seed = seed;
    Sampler s(cfg);
    std::vector<int32_t> out;
    for (int i = 0; i < 50; ++i) {
      auto c = l;
      out.push_back(s.sample(c, {}));
    }
    return out;
  };
  CHECK(draws(1) == draws(1));
  CHECK(draws(1) != draws(2));
}

TEST_CASE("repetition penalty follows transformers: divide positive, multiply negative, once per token") {
  auto l = logits_of({2.0f, -2.0f, 1.0f});
  const std::vector<int32_t> hist{0, 1, 0, 0};
  Sampler::apply_repetition_penalty(l, hist, 2.0f);
  CHECK(l[0] == 1.0f);
  CHECK(l[1] == -4.0f);
  CHECK(l[2] == 1.0f);
  // and it can change the greedy choice
  GenerationConfig cfg;
  cfg.repetition_penalty = 3.0f;
  Sampler s(cfg);
  auto m = logits_of({2.0f, 1.0f});
  const std::vector<int32_t> seen{0};
  CHECK(s.sample(m, seen) == 1);
}

TEST_CASE("invalid settings are rejected naming the field") {
  GenerationConfig cfg;
  cfg.top_p = 0.0f;
  CHECK_THROWS_WITH_AS(cfg.validate(), doctest::Contains("top_p"), Error);
  cfg = {};
  cfg.temperature = -1.0f;
  CHECK_THROWS_WITH_AS(cfg.validate(), doctest::Contains("temperature"), Error);
  cfg = {};
  cfg.max_new_tokens = -5;
  CHECK_THROWS_WITH_AS(cfg.validate(), doctest::Contains("max_new_tokens"), Error);
}
