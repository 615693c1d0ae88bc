// Error-feedback rounding of the 4-bit codes (quant/error_feedback.hpp) on fresh random data: with
// uncorrelated inputs (a diagonal Gram matrix) there is nothing to feed back and every weight takes
// its nearest level; with correlated inputs it lowers the output error clearly, never gives a row a
// larger error than the codes it was given, reports the error measured with the inputs themselves,
// and leaves the grid (scales, zero points) as it was.
#include <doctest/doctest.h>

#include <random>
#include <turbine/quant/error_feedback.hpp>
#include <turbine/quant/group_refine.hpp>

#include "float_rows_util.hpp"
#include "test_support.hpp"

using namespace turbine;
using namespace turbine::quant;
using test::correlated_inputs;
using test::output_error;
using test::random_rows;

namespace {

// GPTQ written plainly: one row at a time, every column's error spread over all later columns at
// once (no blocks), in the basis's order.
std::vector<uint8_t> unblocked_codes(const FloatRows& w, const FeedbackBasis& basis, const Int4Groups& grid) {
  const int64_t out = w.rows(), in = w.cols();
  std::vector<uint8_t> q(static_cast<size_t>(in * out));
  std::vector<double> row(static_cast<size_t>(in));
  for (int64_t j = 0; j < out; ++j) {
    for (int64_t p = 0; p < in; ++p) row[static_cast<size_t>(p)] = w(j, basis.order[static_cast<size_t>(p)]);
    for (int64_t p = 0; p < in; ++p) {
      const int64_t i = basis.order[static_cast<size_t>(p)], g = i / grid.group;
      const float s = grid.scales[static_cast<size_t>(g * out + j)], z = grid.zeros[static_cast<size_t>(g * out + j)];
      const uint8_t level = rtn_level(static_cast<float>(row[static_cast<size_t>(p)]), s, z);
      q[static_cast<size_t>(i * out + j)] = level;
      const double err = (row[static_cast<size_t>(p)] - (double(level) - z) * s) / basis.u(p, p);
      for (int64_t t = p + 1; t < in; ++t) row[static_cast<size_t>(t)] -= err * basis.u(p, t);
    }
  }
  return q;
}

}  // namespace

TEST_CASE("round_int4_feedback: the blocked updates give the codes of plain column-by-column feedback") {
  std::mt19937 rng(test::fresh_seed("error_feedback blocked"));
  // 320 inputs: two full blocks of 128 and a partial one
  const int64_t out = 24, in = 320, group = 32, tokens = 800;
  const FloatRows x = correlated_inputs(tokens, in, rng);
  const std::vector<double> gram = input_gram(x);
  const FeedbackBasis basis = feedback_basis(gram, in);
  // the factor: upper triangular, U^T U = (P^T (G + damp) P)^-1, P the order of decreasing G_ii
  for (int64_t p = 0; p < in; ++p)
    for (int64_t q = 0; q < p; ++q) REQUIRE(basis.u(p, q) == 0.0f);
  for (int64_t p = 1; p < in; ++p)
    REQUIRE(gram[static_cast<size_t>(basis.order[p - 1] * (in + 1))] >= gram[static_cast<size_t>(basis.order[p] * (in + 1))]);
  {
    double mean_diag = 0;
    for (int64_t i = 0; i < in; ++i) mean_diag += gram[static_cast<size_t>(i * (in + 1))] / double(in);
    Eigen::MatrixXd h(in, in);
    for (int64_t p = 0; p < in; ++p)
      for (int64_t q = 0; q < in; ++q)
        h(p, q) = gram[static_cast<size_t>(basis.order[p] * in + basis.order[q])] + (p == q ? kFeedbackDamp * mean_diag : 0.0);
    const Eigen::MatrixXd u = basis.u.cast<double>();
    const double off = ((u.transpose() * u) * h - Eigen::MatrixXd::Identity(in, in)).cwiseAbs().maxCoeff();
    MESSAGE("max |U^T U H - I| = ", off);
    CHECK(off < 1e-3);
  }
  const FloatRows w = random_rows(out, in, rng, 0.05f);
  const Int4Groups start = rtn_quantize_int4(w.data(), out, in, group, round_scale_fp16);
  Int4Groups fed = start;
  FeedbackReport rep;
  round_int4_feedback(w, gram, basis, fed, &rep);
  REQUIRE(rep.rows_kept == 0);  // (every row takes the feedback codes, as the plain version has no fallback)
  const std::vector<uint8_t> plain = unblocked_codes(w, basis, start);
  int64_t same = 0;
  for (size_t i = 0; i < plain.size(); ++i) same += plain[i] == fed.q[i];
  // float summation order differs (blocks, products), so a weight half-way between two levels may
  // round the other way; all but a few codes agree
  MESSAGE("codes equal to the plain version: ", same, " / ", plain.size());
  CHECK(same >= static_cast<int64_t>(plain.size() * 0.995));
}

TEST_CASE("round_int4_feedback: lowers the output error on correlated inputs, never raises a row's") {
  std::mt19937 rng(test::fresh_seed("error_feedback"));
  for (int64_t group : {32, 64, 128}) {
    // in = 384 is three of the feedback's column blocks, so the update across blocks is exercised
    const int64_t out = 40, in = 384, tokens = 1024;
    const FloatRows x = correlated_inputs(tokens, in, rng);
    const std::vector<double> gram = input_gram(x);
    const FeedbackBasis basis = feedback_basis(gram, in);
    const FloatRows w = random_rows(out, in, rng, 0.05f);
    for (bool refined : {false, true}) {
      const Int4Groups start =
          refined ? round_int4_refined(w, group, gram) : rtn_quantize_int4(w.data(), out, in, group, round_scale_fp16);
      Int4Groups fed = start;
      FeedbackReport rep;
      round_int4_feedback(w, gram, basis, fed, &rep);
      const double e_start = output_error(x, w, start), e_fed = output_error(x, w, fed);
      MESSAGE("group ", group, refined ? " refined" : " nearest", " grid: output error ", e_start, " -> ", e_fed, ", rows kept ",
              rep.rows_kept, "/", rep.rows);
      CHECK(rep.rows == out);
      CHECK(rep.error_before == doctest::Approx(e_start).epsilon(1e-3));
      CHECK(rep.error == doctest::Approx(e_fed).epsilon(1e-3));
      CHECK(rep.error <= rep.error_before);
      // the refined grid has already cancelled most of the groups' common offsets (about 8x here),
      // so less is left for feedback there (about 25% here) than after round-to-nearest (about 10x)
      CHECK(e_fed < (refined ? 0.9 : 0.5) * e_start);
      CHECK(fed.scales == start.scales);
      CHECK(fed.zeros == start.zeros);
      for (uint8_t v : fed.q) CHECK(v < 16);
      // per row, never worse than the codes it was given
      for (int64_t j = 0; j < out; j += 8) {
        auto row_error = [&](const Int4Groups& g) {
          double s = 0;
          for (int64_t t = 0; t < tokens; ++t) {
            double d = 0;
            for (int64_t i = 0; i < in; ++i) d += double(x(t, i)) * (double(g.weight(j, i)) - double(w(j, i)));
            s += d * d;
          }
          return s / double(tokens);
        };
        CHECK(row_error(fed) <= row_error(start) * (1 + 1e-4));  // (keep-best compares fp32 Gram sums)
      }
    }
  }
}

TEST_CASE("round_int4_feedback: uncorrelated inputs leave every weight at its nearest level") {
  std::mt19937 rng(test::fresh_seed("error_feedback diagonal"));
  const int64_t out = 16, in = 256, group = 64;
  std::uniform_real_distribution<double> loud(0.1, 10.0);
  std::vector<double> gram(static_cast<size_t>(in * in), 0.0);
  for (int64_t i = 0; i < in; ++i) gram[static_cast<size_t>(i * in + i)] = loud(rng);
  const FloatRows w = random_rows(out, in, rng, 0.05f);
  const Int4Groups rtn = rtn_quantize_int4(w.data(), out, in, group, round_scale_fp16);
  Int4Groups fed = rtn;
  FeedbackReport rep;
  round_int4_feedback(w, gram, feedback_basis(gram, in), fed, &rep);
  CHECK(fed.q == rtn.q);
  CHECK(rep.error == doctest::Approx(rep.error_before));

  // No calibration input at all (a zero Gram matrix): still a factor, still the nearest levels.
  const std::vector<double> zero(static_cast<size_t>(in * in), 0.0);
  Int4Groups none = rtn;
  round_int4_feedback(w, zero, feedback_basis(zero, in), none);
  CHECK(none.q == rtn.q);
}

TEST_CASE("round_int4_feedback names sizes that do not match") {
  std::mt19937 rng(5);
  const FloatRows w = random_rows(8, 64, rng);
  CHECK_THROWS_WITH_AS(feedback_basis(std::vector<double>(10, 0.0), 64), doctest::Contains("Gram matrix is not [64, 64]"),
                       Error);
  const std::vector<double> gram(64 * 64, 0.0);
  const FeedbackBasis basis = feedback_basis(gram, 64);
  Int4Groups r = rtn_quantize_int4(w.data(), 8, 64, 32, round_scale_fp16);
  r.out = 16;
  CHECK_THROWS_WITH_AS(round_int4_feedback(w, gram, basis, r), doctest::Contains("does not match"), Error);
}
