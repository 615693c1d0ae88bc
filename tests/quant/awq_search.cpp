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

TEST_CASE("search_awq_scales: token weights weigh each token's error by their square") {
  std::mt19937 rng(std::random_device{}());
  const int64_t in = 128, tokens = 300, group = 32;
  FloatRows x = random_rows(tokens, in, rng);
  x.row(7) *= 200.0f;  // one token with huge activations (an attention sink)
  const FloatRows w = random_rows(48, in, rng, 0.05f);
  // sample_rows with row scales: the same rows as without, each times its scale
  std::vector<float> scale(static_cast<size_t>(tokens));
  for (int64_t t = 0; t < tokens; ++t) scale[static_cast<size_t>(t)] = 0.5f + float(t % 5);
  const FloatRows plain = sample_rows(x, 100), scaled = sample_rows(x, 100, scale);
  REQUIRE(scaled.rows() == 100);
  for (int64_t i = 0; i < 100; ++i) CHECK(scaled.row(i) == plain.row(i) * scale[static_cast<size_t>(i * tokens / 100)]);
  // weights of 2 everywhere: every loss exactly 4 times, the same winner
  const AwqScales r1 = search_awq_scales(x, {&w}, group, 20, tokens);
  std::vector<float> two(static_cast<size_t>(tokens), 2.0f);
  CpuAwqSearch cpu;
  const AwqScales r2 = search_awq_scales(x, {&w}, group, 20, tokens, cpu, two);
  CHECK(r2.ratio == r1.ratio);
  CHECK(r2.loss == doctest::Approx(4 * r1.loss).epsilon(1e-5));
  CHECK(r2.loss_rtn == doctest::Approx(4 * r1.loss_rtn).epsilon(1e-5));
  // the huge token weighed down to the others' level: its share of the loss falls away
  std::vector<float> damp(static_cast<size_t>(tokens), 1.0f);
  damp[7] = 1.0f / 200.0f;
  const AwqScales r3 = search_awq_scales(x, {&w}, group, 20, tokens, cpu, damp);
  MESSAGE("loss of round-to-nearest with the huge token: ", r1.loss_rtn, ", weighed down: ", r3.loss_rtn);
  CHECK(r3.loss_rtn < 0.5 * r1.loss_rtn);
}

TEST_CASE("search_awq_scales with the MLP loss: the error at down(silu(gate) * up), token weights on the errors") {
  std::mt19937 rng(std::random_device{}());
  const int64_t in = 128, inter = 96, tokens = 200, group = 32;
  FloatRows x = random_rows(tokens, in, rng);
  std::uniform_int_distribution<int64_t> ch(0, in - 1);
  for (int k = 0; k < 4; ++k) x.col(ch(rng)) *= 20.0f;  // salient channels
  FloatRows gate = random_rows(inter, in, rng, 0.1f), up = random_rows(inter, in, rng, 0.1f);
  FloatRows down = random_rows(in, inter, rng, 0.1f);
  std::vector<Eigen::VectorXf> cands = {Eigen::VectorXf::Ones(in), Eigen::VectorXf::Random(in).cwiseAbs().array() + 0.2f};
  CpuAwqSearch cpu;
  // each candidate's loss against the definition, computed here in double, token by token
  std::vector<float> weight(static_cast<size_t>(tokens));
  for (int64_t t = 0; t < tokens; ++t) weight[static_cast<size_t>(t)] = 0.25f + float(t % 7) / 3.0f;
  const std::vector<double> got = cpu.mlp_scale_losses(x, gate, up, down, cands, group, weight);
  for (size_t c = 0; c < cands.size(); ++c) {
    const Eigen::VectorXf& s = cands[c];
    FloatRows gq = gate * s.asDiagonal(), uq = up * s.asDiagonal();
    pseudo_quantize_int4(gq.data(), inter, in, group);
    pseudo_quantize_int4(uq.data(), inter, in, group);
    double sum = 0;
    for (int64_t t = 0; t < tokens; ++t) {
      const Eigen::VectorXd xt = x.row(t).transpose().cast<double>(), xq = xt.cwiseQuotient(s.cast<double>());
      const Eigen::VectorXd g = gate.cast<double>() * xt, u = up.cast<double>() * xt;
      const Eigen::VectorXd g2 = gq.cast<double>() * xq, u2 = uq.cast<double>() * xq;
      auto silu = [](double v) { return v / (1 + std::exp(-v)); };
      const Eigen::VectorXd h = g.unaryExpr(silu).cwiseProduct(u), h2 = g2.unaryExpr(silu).cwiseProduct(u2);
      const double wt = weight[static_cast<size_t>(t)];
      sum += wt * wt * (down.cast<double>() * (h2 - h)).squaredNorm();
    }
    const double want = sum / static_cast<double>(tokens * in);
    MESSAGE("candidate ", c, ": MLP loss ", got[c], ", by definition ", want);
    CHECK(got[c] == doctest::Approx(want).epsilon(1e-3));
  }
  // an intermediate channel that down ignores: its gate/up rows may be anything
  down.col(5).setZero();
  const std::vector<double> before = cpu.mlp_scale_losses(x, gate, up, down, cands, group);
  gate.row(5) *= 50.0f;
  up.row(5).setRandom();
  const std::vector<double> after = cpu.mlp_scale_losses(x, gate, up, down, cands, group);
  for (size_t c = 0; c < cands.size(); ++c) CHECK(after[c] == doctest::Approx(before[c]).epsilon(1e-5));
  // through search_awq_scales: finite, no worse than round-to-nearest, and a different measure
  // than the Linears' own outputs
  const AwqScales mlp = search_awq_scales(x, {&gate, &up}, group, 20, tokens, cpu, {}, &down);
  const AwqScales own = search_awq_scales(x, {&gate, &up}, group, 20, tokens, cpu);
  MESSAGE("MLP loss: ratio ", mlp.ratio, ", loss ", mlp.loss, " (rtn ", mlp.loss_rtn, "); own outputs: ratio ", own.ratio);
  CHECK(mlp.loss <= mlp.loss_rtn);
  CHECK(mlp.loss_rtn != doctest::Approx(own.loss_rtn));
  CHECK_THROWS_WITH_AS(search_awq_scales(x, {&gate}, group, 20, tokens, cpu, {}, &down), doctest::Contains("MLP loss"), Error);
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
