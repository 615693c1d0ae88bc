#pragma once
// The two searches of AWQ (Lin et al., "AWQ: Activation-aware Weight Quantization", 2023) for one
// group of Linears that read the same input, on fp32 matrices:
//
//   search_awq_scales  per-input-channel scales s = mean|x|^a / mean|w~|^(1-a), normalized by
//                      sqrt(max * min), for a = 0, 1/20, ..., 19/20 (w~: |w| relative to its
//                      group's max, averaged over the outputs: AutoAWQ's "duo scaling"); keeps the
//                      a whose quantized weights Q(W diag(s)) diag(s)^-1 give the smallest mean
//                      squared error of the Linears' outputs on the calibration inputs. The caller
//                      multiplies the weights' columns by s and divides the producer of the input
//                      (the RMSNorm's gamma, or the rows of the previous Linear) by s, which leaves
//                      the float model's function unchanged.
//   search_awq_clip    per output row and group, the clipping range max|w| * (1 - i/20), i < 10,
//                      whose quantized weights give the smallest output error on a sample of the
//                      inputs (AutoAWQ's auto_clip; q/k projections are not clipped by the caller).
//
// The error measured is that of the Linears' own outputs (the paper's per-layer objective);
// AutoAWQ measures the scale search on the whole attention block or MLP instead.
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../core/error.hpp"
#include "../core/thread_pool.hpp"
#include "int4_groups.hpp"

namespace turbine::quant {

/// A row-major fp32 matrix (weights [out, in], inputs [tokens, in]).
using FloatRows = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Every `step`-th row of x, at most `max_rows` of them (an even sample of the calibration tokens).
inline FloatRows sample_rows(const FloatRows& x, int64_t max_rows) {
  const int64_t n = x.rows();
  if (n <= max_rows) return x;
  FloatRows s(max_rows, x.cols());
  for (int64_t i = 0; i < max_rows; ++i) s.row(i) = x.row(i * n / max_rows);
  return s;
}

/// What search_awq_scales found.
struct AwqScales {
  std::vector<float> scales;  ///< [in]: multiply the weights' columns by these, divide the input by them
  float ratio = 0;            ///< the exponent a that won
  double loss = 0;            ///< mean squared output error with the scales
  double loss_rtn = 0;        ///< the same without them (a = 0 and s = 1: plain round-to-nearest)
};

/// x: calibration inputs [tokens, in] (all of them: mean|x| uses every row; the error uses
/// `loss_rows` of them); ws: the group's weights, each [out_i, in].
inline AwqScales search_awq_scales(const FloatRows& x, const std::vector<const FloatRows*>& ws, int64_t group,
                                   int grid = 20, int64_t loss_rows = 2048, ThreadPool& pool = default_pool()) {
  const int64_t in = x.cols();
  check(!ws.empty() && in % group == 0, "search_awq_scales: ", in, " input channels are not a multiple of group ", group);
  Eigen::VectorXf x_mean = x.cwiseAbs().colwise().mean().transpose();
  // w~: |w| / max |w| of its group, averaged over every output row of the group's Linears.
  Eigen::VectorXf w_mean = Eigen::VectorXf::Zero(in);
  int64_t rows = 0;
  for (const FloatRows* w : ws) {
    check(w->cols() == in, "search_awq_scales: a weight has ", w->cols(), " columns for ", in, " inputs");
    for (int64_t r = 0; r < w->rows(); ++r)
      for (int64_t g = 0; g < in / group; ++g) {
        const auto seg = w->row(r).segment(g * group, group).cwiseAbs();
        const float mx = seg.maxCoeff() + 1e-6f;
        w_mean.segment(g * group, group) += (seg / mx).transpose();
      }
    rows += w->rows();
  }
  w_mean /= static_cast<float>(rows);
  const FloatRows xs = sample_rows(x, loss_rows);
  std::vector<FloatRows> ref;
  for (const FloatRows* w : ws) ref.push_back(xs * w->transpose());

  // The candidates are independent: one per thread of the pool, each with its own buffers.
  auto candidate = [&](int i) {
    const float a = static_cast<float>(i) / static_cast<float>(grid);
    Eigen::VectorXf s(in);
    for (int64_t c = 0; c < in; ++c)
      s[c] = std::max(std::pow(x_mean[c], a) / (std::pow(w_mean[c], 1.0f - a) + 1e-4f), 1e-4f);
    if (i == 0) s.setOnes();  // a = 0 is plain round-to-nearest (AutoAWQ's formula gives 1 / w~ there)
    s /= std::sqrt(s.maxCoeff() * s.minCoeff());
    return s;
  };
  std::vector<double> losses(static_cast<size_t>(grid), std::numeric_limits<double>::infinity());
  pool.parallel_for(grid, [&](int64_t i0, int64_t i1) {
    FloatRows wq, xq;
    for (int64_t i = i0; i < i1; ++i) {
      const Eigen::VectorXf s = candidate(static_cast<int>(i));
      if (!s.allFinite()) continue;
      xq = xs * s.cwiseInverse().asDiagonal();
      double err = 0, count = 0;
      for (size_t k = 0; k < ws.size(); ++k) {
        wq = *ws[k] * s.asDiagonal();
        pseudo_quantize_int4(wq.data(), wq.rows(), wq.cols(), group);
        err += (xq * wq.transpose() - ref[k]).squaredNorm();
        count += static_cast<double>(ref[k].size());
      }
      losses[static_cast<size_t>(i)] = err / count;
    }
  });
  AwqScales best;
  best.loss_rtn = losses[0];
  best.loss = std::numeric_limits<double>::infinity();
  for (int i = 0; i < grid; ++i)
    if (losses[static_cast<size_t>(i)] < best.loss) {
      best.loss = losses[static_cast<size_t>(i)];
      best.ratio = static_cast<float>(i) / static_cast<float>(grid);
      const Eigen::VectorXf s = candidate(i);
      best.scales.assign(s.data(), s.data() + in);
    }
  check(!best.scales.empty(), "search_awq_scales: no finite scales (are the calibration inputs finite?)");
  return best;
}

/// Clamps each (row, group) of w [out, in] to the range that minimizes the output error on x
/// (sample of the inputs [tokens, in]); returns the mean squared output error before and after.
inline std::pair<double, double> search_awq_clip(FloatRows& w, const FloatRows& x, int64_t group, int grid = 20,
                                                 float max_shrink = 0.5f, ThreadPool& pool = default_pool()) {
  const int64_t out = w.rows(), in = w.cols(), groups = in / group;
  check(x.cols() == in && in % group == 0, "search_awq_clip: sizes do not match");
  std::vector<double> before(static_cast<size_t>(groups)), after(static_cast<size_t>(groups));
  pool.parallel_for(groups, [&](int64_t g0, int64_t g1) {  // groups are independent column blocks
    FloatRows cand(out, group);
    Eigen::VectorXf best_err(out), max_abs(out), best_max(out);
    for (int64_t g = g0; g < g1; ++g) {
      const FloatRows xg = x.middleCols(g * group, group);
      const FloatRows wg = w.middleCols(g * group, group);
      const FloatRows ref = xg * wg.transpose();  // [tokens, out]
      max_abs = wg.cwiseAbs().rowwise().maxCoeff();
      best_err.setConstant(std::numeric_limits<float>::infinity());
      best_max = max_abs;
      for (int i = 0; i < static_cast<int>(max_shrink * static_cast<float>(grid)); ++i) {
        const float f = 1.0f - static_cast<float>(i) / static_cast<float>(grid);
        for (int64_t r = 0; r < out; ++r) {
          const float m = max_abs[r] * f;
          cand.row(r) = wg.row(r).cwiseMax(-m).cwiseMin(m);
        }
        pseudo_quantize_int4(cand.data(), out, group, group);
        const Eigen::VectorXf err = (xg * cand.transpose() - ref).colwise().squaredNorm().transpose();
        if (i == 0) before[static_cast<size_t>(g)] = err.sum();
        for (int64_t r = 0; r < out; ++r)
          if (err[r] < best_err[r]) {
            best_err[r] = err[r];
            best_max[r] = max_abs[r] * f;
          }
      }
      after[static_cast<size_t>(g)] = best_err.sum();
      for (int64_t r = 0; r < out; ++r) {
        auto seg = w.row(r).segment(g * group, group);
        seg = seg.cwiseMax(-best_max[r]).cwiseMin(best_max[r]);
      }
    }
  });
  double b = 0, a = 0;
  for (int64_t g = 0; g < groups; ++g) b += before[static_cast<size_t>(g)], a += after[static_cast<size_t>(g)];
  const double n = static_cast<double>(x.rows()) * static_cast<double>(out);
  return {b / n, a / n};
}

}  // namespace turbine::quant
