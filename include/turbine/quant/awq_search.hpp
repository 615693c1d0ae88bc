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
// The error measured is that of the Linears' own outputs (the paper's per-layer objective), or,
// for gate/up given the down projection, that of the MLP's output (down(silu(gate) * up), down in
// float: AutoAWQ's module2inspect), which counts an error in an intermediate channel by what the
// gating and down make of it. (AutoAWQ also measures q/k/v at the attention block's output; on the
// default model that measured no better than q/k/v's own outputs: docs/QUANTIZATION.md.)
//
// The algorithm (candidate scales, the choice of the winner, the clamping) is written once, here;
// the expensive part of each search, quantizing candidate weights and measuring their output error
// (pseudo-quantize + matmul + squared error), is a search backend's: CpuAwqSearch below, or
// cuda::AwqSearch (backend/cuda/awq_search.cuh), which gives the same results up to float rounding.
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <concepts>
#include <span>
#include <vector>

#include "../core/error.hpp"
#include "../core/thread_pool.hpp"
#include "int4_groups.hpp"

namespace turbine::quant {

/// A row-major fp32 matrix (weights [out, in], inputs [tokens, in]).
using FloatRows = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// The row of n that sample i of min(n, max_rows) evenly spread samples takes.
inline int64_t sampled_row(int64_t i, int64_t n, int64_t max_rows) { return i * n / std::min(n, max_rows); }

/// Every `step`-th row of x, at most `max_rows` of them (an even sample of the calibration tokens);
/// with `row_scale` ([x.rows()]), each row taken is multiplied by its entry.
inline FloatRows sample_rows(const FloatRows& x, int64_t max_rows, std::span<const float> row_scale = {}) {
  const int64_t n = x.rows(), m = std::min(n, max_rows);
  if (n <= max_rows && row_scale.empty()) return x;
  FloatRows s(m, x.cols());
  for (int64_t i = 0; i < m; ++i) {
    const int64_t r = sampled_row(i, n, max_rows);
    s.row(i) = x.row(r);
    if (!row_scale.empty()) s.row(i) *= row_scale[static_cast<size_t>(r)];
  }
  return s;
}

/// The expensive parts of the two searches, on one device. A backend B provides (and may provide
/// mlp_scale_losses as CpuAwqSearch does; search_awq_scales uses the CPU's where it does not)
///   b.scale_losses(x, ws, cands, group): for each candidate scale vector s (an empty one is
///     skipped: infinity), the mean over the group's Linears and their outputs of the squared
///     error of (x diag(1/s)) Q(W diag(s))^T against x W^T, Q = pseudo_quantize_int4;
///   b.clip_errors(w, x, group, factors): [factors, in / group, out] the summed (over the tokens)
///     squared error of output r restricted to group g's inputs when row r's group g is clamped to
///     max|w| * factor and quantized, against the unclamped float weights.
template <class B>
concept AwqSearchBackend = requires(B& b, const FloatRows& m, const std::vector<const FloatRows*>& ws,
                                    const std::vector<Eigen::VectorXf>& cands, const std::vector<float>& factors) {
  { b.scale_losses(m, ws, cands, int64_t{}) } -> std::same_as<std::vector<double>>;
  { b.clip_errors(m, m, int64_t{}, factors) } -> std::same_as<std::vector<float>>;
};

/// The CPU search backend: Eigen products, candidates (or groups) spread over a thread pool.
class CpuAwqSearch {
 public:
  /// A backend that runs on `pool`.
  explicit CpuAwqSearch(ThreadPool& pool = default_pool()) : pool_(pool) {}

  /// The losses of the scale search's candidates (see AwqSearchBackend), one candidate per thread.
  std::vector<double> scale_losses(const FloatRows& x, const std::vector<const FloatRows*>& ws,
                                   const std::vector<Eigen::VectorXf>& cands, int64_t group) {
    std::vector<FloatRows> ref;
    for (const FloatRows* w : ws) ref.push_back(x * w->transpose());
    std::vector<double> losses(cands.size(), std::numeric_limits<double>::infinity());
    pool_.parallel_for(static_cast<int64_t>(cands.size()), [&](int64_t i0, int64_t i1) {
      FloatRows wq, xq;  // each thread its own buffers
      for (int64_t i = i0; i < i1; ++i) {
        const Eigen::VectorXf& s = cands[static_cast<size_t>(i)];
        if (s.size() == 0) continue;
        xq = x * s.cwiseInverse().asDiagonal();
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
    return losses;
  }

  /// The losses of the gate/up scale search's candidates measured at the MLP's output: the mean
  /// squared error of (silu(x' Q(G s)^T) * (x' Q(U s)^T)) D^T against the float MLP, x' = x diag(1/s),
  /// D in float; row_weight (empty, or [tokens]): each token's error times the square of its entry.
  std::vector<double> mlp_scale_losses(const FloatRows& x, const FloatRows& gate, const FloatRows& up,
                                       const FloatRows& down, const std::vector<Eigen::VectorXf>& cands, int64_t group,
                                       std::span<const float> row_weight = {}) {
    auto mlp = [&](const FloatRows& xs, const FloatRows& g, const FloatRows& u) {
      FloatRows h = xs * g.transpose();
      const FloatRows v = xs * u.transpose();
      h = h.binaryExpr(v, [](float a, float b) { return a / (1.0f + std::exp(-a)) * b; });
      return FloatRows(h * down.transpose());
    };
    const FloatRows ref = mlp(x, gate, up);
    std::vector<double> losses(cands.size(), std::numeric_limits<double>::infinity());
    pool_.parallel_for(static_cast<int64_t>(cands.size()), [&](int64_t i0, int64_t i1) {
      FloatRows gq, uq, xq;
      for (int64_t i = i0; i < i1; ++i) {
        const Eigen::VectorXf& s = cands[static_cast<size_t>(i)];
        if (s.size() == 0) continue;
        xq = x * s.cwiseInverse().asDiagonal();
        gq = gate * s.asDiagonal();
        uq = up * s.asDiagonal();
        pseudo_quantize_int4(gq.data(), gq.rows(), gq.cols(), group);
        pseudo_quantize_int4(uq.data(), uq.rows(), uq.cols(), group);
        Eigen::VectorXf err = (mlp(xq, gq, uq) - ref).rowwise().squaredNorm();
        if (!row_weight.empty())
          err = err.cwiseProduct(Eigen::Map<const Eigen::VectorXf>(row_weight.data(), err.size()).cwiseAbs2());
        losses[static_cast<size_t>(i)] = static_cast<double>(err.sum()) / static_cast<double>(ref.size());
      }
    });
    return losses;
  }

  /// The errors of the clip search's candidates (see AwqSearchBackend), one group per thread.
  std::vector<float> clip_errors(const FloatRows& w, const FloatRows& x, int64_t group, const std::vector<float>& factors) {
    const int64_t out = w.rows(), groups = w.cols() / group, nf = static_cast<int64_t>(factors.size());
    std::vector<float> errs(static_cast<size_t>(nf * groups * out));
    pool_.parallel_for(groups, [&](int64_t g0, int64_t g1) {  // groups are independent column blocks
      FloatRows cand(out, group);
      Eigen::VectorXf max_abs(out);
      for (int64_t g = g0; g < g1; ++g) {
        const FloatRows xg = x.middleCols(g * group, group);
        const FloatRows wg = w.middleCols(g * group, group);
        const FloatRows ref = xg * wg.transpose();  // [tokens, out]
        max_abs = wg.cwiseAbs().rowwise().maxCoeff();
        for (int64_t i = 0; i < nf; ++i) {
          for (int64_t r = 0; r < out; ++r) {
            const float m = max_abs[r] * factors[static_cast<size_t>(i)];
            cand.row(r) = wg.row(r).cwiseMax(-m).cwiseMin(m);
          }
          pseudo_quantize_int4(cand.data(), out, group, group);
          const Eigen::VectorXf err = (xg * cand.transpose() - ref).colwise().squaredNorm().transpose();
          std::copy(err.data(), err.data() + out, errs.begin() + (i * groups + g) * out);
        }
      }
    });
    return errs;
  }

 private:
  ThreadPool& pool_;
};
static_assert(AwqSearchBackend<CpuAwqSearch>);

/// What search_awq_scales found.
struct AwqScales {
  std::vector<float> scales;  ///< [in]: multiply the weights' columns by these, divide the input by them
  float ratio = 0;            ///< the exponent a that won
  double loss = 0;            ///< mean squared output error with the scales
  double loss_rtn = 0;        ///< the same without them (a = 0 and s = 1: plain round-to-nearest)
};

/// x: calibration inputs [tokens, in] (all of them: mean|x| uses every row; the error uses
/// `loss_rows` of them); ws: the group's weights, each [out_i, in]; loss_weight (empty, or
/// [tokens]): each token's output error is weighted by the square of its entry; mlp_down (with
/// ws = {gate, up}): measure the error at the MLP's output instead (see mlp_scale_losses).
template <AwqSearchBackend Backend>
AwqScales search_awq_scales(const FloatRows& x, const std::vector<const FloatRows*>& ws, int64_t group, int grid,
                            int64_t loss_rows, Backend& backend, std::span<const float> loss_weight = {},
                            const FloatRows* mlp_down = nullptr) {
  const int64_t in = x.cols();
  check(!ws.empty() && in % group == 0, "search_awq_scales: ", in, " input channels are not a multiple of group ", group);
  check(grid > 0, "search_awq_scales: grid ", grid, " is not positive");
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
  auto candidate = [&](int i) {
    const float a = static_cast<float>(i) / static_cast<float>(grid);
    Eigen::VectorXf s(in);
    for (int64_t c = 0; c < in; ++c)
      s[c] = std::max(std::pow(x_mean[c], a) / (std::pow(w_mean[c], 1.0f - a) + 1e-4f), 1e-4f);
    if (i == 0) s.setOnes();  // a = 0 is plain round-to-nearest (AutoAWQ's formula gives 1 / w~ there)
    s /= std::sqrt(s.maxCoeff() * s.minCoeff());
    return s;
  };
  std::vector<Eigen::VectorXf> cands;
  for (int i = 0; i < grid; ++i) {
    cands.push_back(candidate(i));
    if (!cands.back().allFinite()) cands.back().resize(0);
  }
  std::vector<double> losses;
  if (mlp_down) {  // the MLP is not linear in x: the sampled rows' weights apply to their errors
    check(ws.size() == 2 && mlp_down->cols() == ws[0]->rows() && ws[1]->rows() == ws[0]->rows(),
          "search_awq_scales: the MLP loss needs {gate, up} and a down projection with ", ws[0]->rows(), " columns");
    const FloatRows xs = sample_rows(x, loss_rows);
    std::vector<float> w;  // the sampled rows' weights
    if (!loss_weight.empty())
      for (int64_t i = 0; i < xs.rows(); ++i) w.push_back(loss_weight[static_cast<size_t>(sampled_row(i, x.rows(), loss_rows))]);
    if constexpr (requires { backend.mlp_scale_losses(x, x, x, x, cands, group, std::span<const float>(w)); })
      losses = backend.mlp_scale_losses(xs, *ws[0], *ws[1], *mlp_down, cands, group, w);
    else
      losses = CpuAwqSearch().mlp_scale_losses(xs, *ws[0], *ws[1], *mlp_down, cands, group, w);
  } else {
    // (the error is linear in x, so a token's row scaled by its weight weighs its squared error)
    losses = backend.scale_losses(sample_rows(x, loss_rows, loss_weight), ws, cands, group);
  }
  AwqScales best;
  best.loss_rtn = losses[0];
  best.loss = std::numeric_limits<double>::infinity();
  for (int i = 0; i < grid; ++i)
    if (losses[static_cast<size_t>(i)] < best.loss) {
      best.loss = losses[static_cast<size_t>(i)];
      best.ratio = static_cast<float>(i) / static_cast<float>(grid);
      best.scales.assign(cands[static_cast<size_t>(i)].data(), cands[static_cast<size_t>(i)].data() + in);
    }
  check(!best.scales.empty(), "search_awq_scales: no finite scales (are the calibration inputs finite?)");
  return best;
}

/// search_awq_scales on the CPU.
inline AwqScales search_awq_scales(const FloatRows& x, const std::vector<const FloatRows*>& ws, int64_t group,
                                   int grid = 20, int64_t loss_rows = 2048, ThreadPool& pool = default_pool()) {
  CpuAwqSearch cpu(pool);
  return search_awq_scales(x, ws, group, grid, loss_rows, cpu);
}

/// What search_awq_clip found and did.
struct AwqClip {
  double before = 0;  ///< mean squared output error of the sampled inputs, unclamped
  double after = 0;   ///< the same with the ranges chosen
  std::vector<float> shrink;  ///< [out, in / group] the factor of max|w| each (row, group) was clamped to
};

/// Clamps each (row, group) of w [out, in] to the range that minimizes the output error on x
/// (sample of the inputs [tokens, in]).
template <AwqSearchBackend Backend>
AwqClip search_awq_clip(FloatRows& w, const FloatRows& x, int64_t group, int grid, float max_shrink, Backend& backend) {
  const int64_t out = w.rows(), in = w.cols(), groups = in / group;
  check(x.cols() == in && group > 0 && in % group == 0, "search_awq_clip: sizes do not match");
  const int nf = static_cast<int>(max_shrink * static_cast<float>(grid));
  check(nf > 0, "search_awq_clip: no candidates (grid ", grid, ", max_shrink ", max_shrink, ")");
  std::vector<float> factors;
  for (int i = 0; i < nf; ++i) factors.push_back(1.0f - static_cast<float>(i) / static_cast<float>(grid));
  const std::vector<float> errs = backend.clip_errors(w, x, group, factors);  // [factors, groups, out]
  AwqClip r;
  r.shrink.assign(static_cast<size_t>(out * groups), 1.0f);
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t row = 0; row < out; ++row) {
      float best = std::numeric_limits<float>::infinity();
      int best_i = 0;
      for (int i = 0; i < nf; ++i) {
        const float e = errs[static_cast<size_t>((i * groups + g) * out + row)];
        if (e < best) best = e, best_i = i;
      }
      r.before += errs[static_cast<size_t>(g * out + row)];  // factor 1: unclamped
      r.after += std::isfinite(best) ? best : errs[static_cast<size_t>(g * out + row)];
      r.shrink[static_cast<size_t>(row * groups + g)] = factors[static_cast<size_t>(best_i)];
      auto seg = w.row(row).segment(g * group, group);
      const float m = seg.cwiseAbs().maxCoeff() * factors[static_cast<size_t>(best_i)];
      seg = seg.cwiseMax(-m).cwiseMin(m);
    }
  const double n = static_cast<double>(x.rows()) * static_cast<double>(out);
  r.before /= n;
  r.after /= n;
  return r;
}

/// search_awq_clip on the CPU; returns the mean squared output error before and after.
inline std::pair<double, double> search_awq_clip(FloatRows& w, const FloatRows& x, int64_t group, int grid = 20,
                                                 float max_shrink = 0.5f, ThreadPool& pool = default_pool()) {
  CpuAwqSearch cpu(pool);
  const AwqClip r = search_awq_clip(w, x, group, grid, max_shrink, cpu);
  return {r.before, r.after};
}

}  // namespace turbine::quant
