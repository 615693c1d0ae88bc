#pragma once
// Output-aware rounding of one Linear to group-wise 4-bit weights: round-to-nearest as
// rtn_quantize_int4 (fp16 scales), then, per output row, a small search over each group's (scale,
// zero point) that lowers the row's output error on the calibration inputs, e^T G e, with e the
// row's weight error and G the inputs' Gram matrix (X^T X over calibration tokens).
//
// Why: the zero point is an integer, so round-to-nearest leaves each group with an offset of up to
// half a step that has the same sign for every weight of the group; such an offset adds up across
// the inputs of a dot product instead of averaging out, and it is largest when the weights already
// sit on another 4-bit grid (the default model is a Q4_1 GGUF, whose groups have a free fp16
// minimum). A zero point one step off, with a slightly different scale, often cancels it on the
// directions the inputs actually take. A group only ever moves to a pair that lowers the row's
// error, so no row ends with a larger output error than round-to-nearest gives it.
#include <algorithm>
#include <cmath>
#include <iterator>
#include <vector>

#include "../core/error.hpp"
#include "../core/thread_pool.hpp"
#include "awq_search.hpp"
#include "int4_groups.hpp"

namespace turbine::quant {

/// G = X^T X / tokens, [in, in] row-major (x: [tokens, in]; the product in fp32, kept as double),
/// exactly symmetric (the product's two triangles averaged), as round_int4_refined needs.
inline std::vector<double> input_gram(const FloatRows& x) {
  using MatrixRd = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const FloatRows g = (x.transpose() * x) / static_cast<float>(std::max<Eigen::Index>(1, x.rows()));
  MatrixRd gd = g.cast<double>();
  gd = (0.5 * (gd + gd.transpose())).eval();
  return std::vector<double>(gd.data(), gd.data() + gd.size());
}

/// The candidates: the round-to-nearest scale times these factors, each with its zero point and
/// the ones a step below and above.
inline constexpr float kRefineScaleFactors[] = {0.90f, 0.93f, 0.96f, 0.98f, 1.0f, 1.02f, 1.04f, 1.07f, 1.10f};

/// What round_int4_refined did: the summed output error e^T G e of the rows (the mean squared
/// output error on the calibration inputs) with round-to-nearest and after the refinement, and how
/// many groups took other parameters.
struct RefineReport {
  double error_rtn = 0;  ///< summed e^T G e with round-to-nearest
  double error = 0;      ///< summed e^T G e after the refinement
  int64_t changed = 0;   ///< groups that took another scale or zero point
  int64_t groups = 0;    ///< groups looked at
};

/// Coordinate-descent passes over a row's groups.
inline constexpr int kRefinePasses = 2;

/// W [out, in] (rows = outputs) to 4-bit groups, refined as above against `gram` (input_gram of
/// the Linear's calibration inputs; symmetric). `target` (null: w itself, else [out, in]) is what the error
/// is measured against: the weights before AWQ's clipping, where w is the clipped copy whose
/// round-to-nearest grid is the starting point (so that a group may take back part of the range
/// the clip search, which looks at one group at a time on fewer tokens, took away). Per row, the
/// objective is the row's whole output error e^T G e, cross-group terms included: the groups are visited in turn (kRefinePasses times), and
/// a group takes the candidate that lowers the whole error most given the others' current choice
/// (h = G e is kept up to date, so a candidate costs O(group^2)). Deterministic; rows in parallel.
inline Int4Groups round_int4_refined(const FloatRows& w, int64_t group, const std::vector<double>& gram,
                                     RefineReport* report = nullptr, ThreadPool& pool = default_pool(),
                                     const FloatRows* target = nullptr) {
  using MatrixRd = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const int64_t out = w.rows(), in = w.cols();
  check(static_cast<int64_t>(gram.size()) == in * in, "round_int4_refined: the Gram matrix is not [", in, ", ", in, "]");
  check(!target || (target->rows() == out && target->cols() == in), "round_int4_refined: the target is not [", out,
        ", ", in, "]");
  const FloatRows& ref = target ? *target : w;
  const Eigen::Map<const MatrixRd> G(gram.data(), in, in);
  Int4Groups r = rtn_quantize_int4(w.data(), out, in, group, round_scale_fp16);
  const int64_t groups = in / group;
  std::vector<double> err_rtn(static_cast<size_t>(out), 0.0), err_new(static_cast<size_t>(out), 0.0);
  std::vector<int64_t> changed(static_cast<size_t>(out), 0);
  constexpr int kCandidates = static_cast<int>(std::size(kRefineScaleFactors)) * 3;
  pool.parallel_for(out, [&](int64_t j0, int64_t j1) {
    Eigen::VectorXd e(in), h(in);
    // The candidates' error changes as the columns of D, so that G_gg D is one matrix product
    // (several times faster than a matrix-vector product per candidate).
    Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic> D(group, kCandidates), GD(group, kCandidates);
    std::vector<uint8_t> q(static_cast<size_t>(group * kCandidates));
    float cand_s[kCandidates], cand_z[kCandidates];
    std::vector<float> s_cur(static_cast<size_t>(groups)), z_cur(static_cast<size_t>(groups));
    for (int64_t j = j0; j < j1; ++j) {
      const float* row = ref.data() + j * in;
      for (int64_t g = 0; g < groups; ++g) {
        s_cur[static_cast<size_t>(g)] = r.scales[static_cast<size_t>(g * out + j)];
        z_cur[static_cast<size_t>(g)] = r.zeros[static_cast<size_t>(g * out + j)];
      }
      for (int64_t i = 0; i < in; ++i) e(i) = r.weight(j, i) - static_cast<double>(row[i]);
      h.noalias() = G * e;
      double total = e.dot(h);
      err_rtn[static_cast<size_t>(j)] = total;
      for (int pass = 0; pass < kRefinePasses; ++pass)
        for (int64_t g = 0; g < groups; ++g) {
          const int64_t i0 = g * group;
          const float* x = row + i0;
          const float s0 = r.scales[static_cast<size_t>(g * out + j)];
          const float z0 = r.zeros[static_cast<size_t>(g * out + j)];
          int n = 0;  // candidates kept, in the order of the search: factors, then zero point -1, 0, +1
          for (float f : kRefineScaleFactors)
            for (float dz : {-1.f, 0.f, 1.f}) {
              const float sc = round_scale_fp16(s0 * f), zc = z0 + dz;  // s0 is fp16 already: f = 1 gives s0
              if (zc < 0.f || zc > 15.f || !(sc > 0.f)) continue;
              if (sc == s_cur[static_cast<size_t>(g)] && zc == z_cur[static_cast<size_t>(g)]) continue;
              // column n of D = the candidate's error less the current one, over the group
              uint8_t* qn = q.data() + static_cast<size_t>(n) * group;
              for (int64_t i = 0; i < group; ++i) {
                qn[i] = rtn_level(x[i], sc, zc);
                D(i, n) = ((double(qn[i]) - zc) * sc - x[i]) - e(i0 + i);
              }
              cand_s[n] = sc;
              cand_z[n] = zc;
              ++n;
            }
          if (n == 0) continue;
          GD.leftCols(n).noalias() = G.block(i0, i0, group, group) * D.leftCols(n);
          // (e + d)^T G (e + d) - e^T G e = 2 d.h + d^T G_gg d; the first that lowers it most wins
          const auto hg = h.segment(i0, group);
          double best = 0;  // the current choice changes nothing
          int best_n = -1;
          for (int c = 0; c < n; ++c) {
            const double delta = 2.0 * D.col(c).dot(hg) + D.col(c).dot(GD.col(c));
            if (delta < best) {
              best = delta;
              best_n = c;
            }
          }
          if (best_n >= 0) {
            // G is symmetric: its rows i0.. are its columns i0.., and contiguous (row-major)
            h.noalias() += G.middleRows(i0, group).transpose() * D.col(best_n);
            e.segment(i0, group) += D.col(best_n);
            const uint8_t* qb = q.data() + static_cast<size_t>(best_n) * group;
            for (int64_t i = 0; i < group; ++i) r.q[static_cast<size_t>((i0 + i) * out + j)] = qb[i];
            s_cur[static_cast<size_t>(g)] = cand_s[best_n];
            z_cur[static_cast<size_t>(g)] = cand_z[best_n];
            total += best;
          }
        }
      int64_t row_changed = 0;
      for (int64_t g = 0; g < groups; ++g) {  // r still holds round-to-nearest's pair here
        float& s = r.scales[static_cast<size_t>(g * out + j)];
        uint8_t& z = r.zeros[static_cast<size_t>(g * out + j)];
        row_changed += s != s_cur[static_cast<size_t>(g)] || z != z_cur[static_cast<size_t>(g)];
        s = s_cur[static_cast<size_t>(g)];
        z = static_cast<uint8_t>(z_cur[static_cast<size_t>(g)]);
      }
      err_new[static_cast<size_t>(j)] = total;
      changed[static_cast<size_t>(j)] = row_changed;
    }
  }, 4);
  if (report) {
    for (int64_t j = 0; j < out; ++j) {
      report->error_rtn += err_rtn[static_cast<size_t>(j)];
      report->error += err_new[static_cast<size_t>(j)];
      report->changed += changed[static_cast<size_t>(j)];
    }
    report->groups += out * groups;
  }
  return r;
}

}  // namespace turbine::quant
