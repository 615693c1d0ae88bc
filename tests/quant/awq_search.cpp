// The AWQ searches (quant/awq_search.hpp) on fresh random data with outlier input channels, the
// case AWQ exists for: the scale search never does worse than round-to-nearest (a = 0 is one of
// its candidates) and does much better when a few channels carry large activations; the clip
// search never raises the output error it measures.
#include <doctest/doctest.h>

#include <random>
#include <turbine/quant/awq_search.hpp>

#include "float_rows_util.hpp"

using namespace turbine;
using namespace turbine::quant;

using test::random_rows;

TEST_CASE("search_awq_scales: at least as good as round-to-nearest, much better with outlier channels") {
  std::mt19937 rng(std::random_device{}());
  const int64_t in = 256, tokens = 1024, group = 64;
  FloatRows x = random_rows(tokens, in, rng);
  std::uniform_int_distribution<int64_t> ch(0, in - 1);
  for (int k = 0; k < 6; ++k) x.col(ch(rng)) *= 30.0f;  // salient channels
  const FloatRows w1 = random_rows(96, in, rng, 0.05f), w2 = random_rows(40, in, rng, 0.05f);
  const AwqScales r = search_awq_scales(x, {&w1, &w2}, group, 20, 512);
  MESSAGE("ratio ", r.ratio, ", loss ", r.loss, " vs rtn ", r.loss_rtn);
  REQUIRE(r.scales.size() == static_cast<size_t>(in));
  CHECK(r.loss <= r.loss_rtn);
  CHECK(r.loss < 0.8 * r.loss_rtn);
  CHECK(r.ratio > 0.0f);
  for (float s : r.scales) CHECK(std::isfinite(s));
  // The scales are applied as (x / s) (W s): the float product is unchanged.
  const Eigen::Map<const Eigen::VectorXf> s(r.scales.data(), in);
  const FloatRows y = x * w1.transpose(), ys = (x * s.cwiseInverse().asDiagonal()) * (w1 * s.asDiagonal()).transpose();
  CHECK((ys - y).norm() / y.norm() < 1e-5);
  CHECK_THROWS_WITH_AS(search_awq_scales(x, {&w1}, 96), doctest::Contains("not a multiple of group 96"), Error);
}

TEST_CASE("search_awq_clip: clipping never raises the sampled output error") {
  std::mt19937 rng(std::random_device{}());
  const int64_t in = 128, group = 32;
  FloatRows w = random_rows(48, in, rng, 0.05f);
  std::uniform_int_distribution<int64_t> pick(0, w.size() - 1);
  for (int k = 0; k < 20; ++k) w.data()[pick(rng)] *= 12.0f;  // a few outlier weights stretch their groups
  const FloatRows orig = w, x = random_rows(256, in, rng);
  const auto [before, after] = search_awq_clip(w, x, group);
  MESSAGE("clip: output MSE ", before, " -> ", after);
  CHECK(after <= before);
  CHECK(after < before);  // the outliers make some group's range too wide for 15 steps
  CHECK(w.cwiseAbs().maxCoeff() <= orig.cwiseAbs().maxCoeff());
}
