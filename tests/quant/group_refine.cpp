// The output-aware group rounding (quant/group_refine.hpp) on fresh random data: it never gives a
// row a larger output error on the calibration inputs than round-to-nearest (a group moves only
// when the row's error falls), the output error it reports is the one measured with the inputs
// themselves, and on
// weights that already sit on a Q4_1 grid (free fp16 minimum per group, the default model's case)
// with correlated inputs it lowers the output error clearly. Codes, zero points and scales stay in
// the format's range.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <turbine/quant/group_refine.hpp>

#include "float_rows_util.hpp"

using namespace turbine;
using namespace turbine::quant;
using test::correlated_inputs;
using test::output_error;
using test::random_rows;

namespace {

// Weights of a Q4_1 model: per group of `group`, d * q + m with q in 0..15 and a float minimum m.
FloatRows q4_1_weights(int64_t out, int64_t in, int64_t group, std::mt19937& rng) {
  std::uniform_int_distribution<int> level(0, 15);
  std::uniform_real_distribution<float> d(0.002f, 0.01f), m(-0.08f, -0.01f);
  FloatRows w(out, in);
  for (int64_t j = 0; j < out; ++j)
    for (int64_t g = 0; g < in / group; ++g) {
      const float dd = d(rng), mm = m(rng);
      for (int64_t i = 0; i < group; ++i) w(j, g * group + i) = dd * float(level(rng)) + mm;
    }
  return w;
}

}  // namespace

TEST_CASE("round_int4_refined: never worse than round-to-nearest, clearly better on a Q4_1 grid") {
  std::mt19937 rng(std::random_device{}());
  for (int64_t group : {32, 64, 128}) {
    const int64_t out = 48, in = 256, tokens = 512;
    const FloatRows x = correlated_inputs(tokens, in, rng);
    const std::vector<double> gram = input_gram(x);
    for (bool on_grid : {true, false}) {
      const FloatRows w = on_grid ? q4_1_weights(out, in, 32, rng) : random_rows(out, in, rng, 0.05f);
      RefineReport rep;
      const Int4Groups refined = round_int4_refined(w, group, gram, &rep);
      const Int4Groups rtn = rtn_quantize_int4(w.data(), out, in, group, round_scale_fp16);
      const double e_rtn = output_error(x, w, rtn), e_ref = output_error(x, w, refined);
      MESSAGE("group ", group, std::string(on_grid ? " Q4_1-grid" : " gaussian"), " weights: output error ", e_rtn, " -> ", e_ref,
              ", groups changed ", rep.changed, "/", rep.groups);
      CHECK(rep.groups == out * (in / group));
      CHECK(rep.error <= rep.error_rtn);
      // The reported errors are the measured ones: e^T G e with G = X^T X / tokens.
      CHECK(rep.error_rtn == doctest::Approx(e_rtn).epsilon(1e-3));
      CHECK(rep.error == doctest::Approx(e_ref).epsilon(1e-3));
      CHECK(e_ref <= e_rtn * (1 + 1e-4));
      if (on_grid) CHECK(e_ref < 0.9 * e_rtn);
      for (uint8_t v : refined.q) CHECK(v < 16);
      for (uint8_t z : refined.zeros) CHECK(z < 16);
      for (float s : refined.scales) {
        CHECK(s > 0.0f);
        CHECK(s == round_scale_fp16(s));  // stored as fp16 exactly
      }
    }
  }
}

TEST_CASE("round_int4_refined names a Gram matrix of the wrong size") {
  std::mt19937 rng(3);
  const FloatRows w = random_rows(4, 64, rng);
  const std::vector<double> gram(10, 0.0);
  CHECK_THROWS_WITH_AS(round_int4_refined(w, 32, gram), doctest::Contains("Gram matrix is not [64, 64]"), Error);
}

TEST_CASE("round_int4_refined with a target: starts on the clipped grid, measures against the weights before the clip") {
  std::mt19937 rng(std::random_device{}());
  const int64_t out = 32, in = 256, group = 64, tokens = 512;
  const FloatRows x = correlated_inputs(tokens, in, rng);
  const std::vector<double> gram = input_gram(x);
  const FloatRows w = random_rows(out, in, rng, 0.05f);
  FloatRows clipped = w;  // every group clamped to 70% of its largest magnitude, as a harsh clip search would
  for (int64_t j = 0; j < out; ++j)
    for (int64_t g = 0; g < in / group; ++g) {
      auto seg = clipped.row(j).segment(g * group, group);
      const float m = 0.7f * seg.cwiseAbs().maxCoeff();
      seg = seg.cwiseMax(-m).cwiseMin(m);
    }
  RefineReport to_target, to_clipped, same;
  const Int4Groups a = round_int4_refined(clipped, group, gram, &to_target, default_pool(), &w);
  const Int4Groups b = round_int4_refined(clipped, group, gram, &to_clipped);
  const Int4Groups rtn = rtn_quantize_int4(clipped.data(), out, in, group, round_scale_fp16);
  const double e_rtn = output_error(x, w, rtn), e_target = output_error(x, w, a), e_clipped = output_error(x, w, b);
  MESSAGE("output error against the unclipped weights: clipped grid ", e_rtn, ", refined to the clipped weights ",
          e_clipped, ", refined to the unclipped ", e_target);
  // the report measures against the target, from the clipped grid's round-to-nearest
  CHECK(to_target.error_rtn == doctest::Approx(e_rtn).epsilon(1e-3));
  CHECK(to_target.error == doctest::Approx(e_target).epsilon(1e-3));
  CHECK(e_target <= e_rtn * (1 + 1e-4));
  CHECK(e_target < e_clipped);  // the refinement takes back range the clip took where the inputs need it
  // a target equal to the weights is no target
  const Int4Groups c = round_int4_refined(clipped, group, gram, &same, default_pool(), &clipped);
  CHECK(c.q == b.q);
  CHECK(c.scales == b.scales);
  CHECK(c.zeros == b.zeros);
  const FloatRows wrong = random_rows(out, in / 2, rng);
  CHECK_THROWS_WITH_AS(round_int4_refined(clipped, group, gram, nullptr, default_pool(), &wrong),
                       doctest::Contains("the target is not [32, 256]"), Error);
}
