#pragma once
// The 4-bit codes of one Linear chosen with error feedback, after its group parameters (scale,
// zero point) are fixed: GPTQ's column-by-column rounding (Frantar et al., "GPTQ: Accurate
// Post-Training Quantization for Generative Pre-trained Transformers", 2022) on the group grid that
// round_int4_refined (group_refine.hpp) chose.
//
// Why: rounding every weight to its nearest level leaves errors that are independent of each
// other, while the inputs are not: with the inputs' Gram matrix G, the row's output error is
// e^T G e, and when a column is rounded, the error it leaves can be partly cancelled by moving the
// columns not yet rounded along G's correlations (the optimal update of the Optimal Brain Surgeon,
// through the Cholesky factor of G^-1). The grid stays the one stored in the file, so the format,
// the kernels and the group parameters' search are unchanged; only which level each weight takes.
//
// Columns go in order of decreasing G_ii (GPTQ's "act order": the loudest inputs are rounded
// first, while the most columns are left to absorb their error). With fixed group parameters the
// order costs nothing at inference. G is damped by 1% of its mean diagonal, as GPTQ does; the
// result is checked per row on the undamped G, and a row whose error would grow keeps its codes.
#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "../core/error.hpp"
#include "../core/thread_pool.hpp"
#include "awq_search.hpp"
#include "int4_groups.hpp"

namespace turbine::quant {

/// G's damping, relative to its mean diagonal (GPTQ's percdamp).
inline constexpr double kFeedbackDamp = 0.01;
/// Columns whose updates are applied to the others at once (GPTQ's lazy batch: the update of the
/// columns past a block is one matrix product).
inline constexpr int64_t kFeedbackBlock = 128;

/// What error feedback needs of one Gram matrix, shared by the Linears that read the same input.
struct FeedbackBasis {
  int64_t in = 0;              ///< input features (the Gram matrix is [in, in])
  std::vector<int64_t> order;  ///< column order: decreasing G_ii
  /// Upper Cholesky factor of (P^T (G + damp) P)^-1, P the column order: row p gives how rounding
  /// column order[p] moves the columns after it.
  Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> u;
};

/// The basis of `gram` ([in, in] row-major, input_gram's output).
inline FeedbackBasis feedback_basis(const std::vector<double>& gram, int64_t in) {
  using MatrixRd = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  check(in > 0 && static_cast<int64_t>(gram.size()) == in * in, "feedback_basis: the Gram matrix is not [", in, ", ",
        in, "]");
  const Eigen::Map<const MatrixRd> G(gram.data(), in, in);
  const double mean_diag = G.diagonal().mean();
  check(std::isfinite(mean_diag), "feedback_basis: the Gram matrix is not finite (calibration inputs with inf or nan)");
  FeedbackBasis b;
  b.in = in;
  b.order.resize(static_cast<size_t>(in));
  std::iota(b.order.begin(), b.order.end(), int64_t{0});
  std::stable_sort(b.order.begin(), b.order.end(), [&](int64_t a, int64_t c) { return G(a, a) > G(c, c); });
  // An all-zero input (no calibration token reached this Linear's columns) still gets a damping
  // of 1, so the factor exists; every column then rounds to nearest.
  const double damp = mean_diag > 0 ? kFeedbackDamp * mean_diag : 1.0;
  // H = P^T (G + damp) P in reverse column order (J H J), so that its lower Cholesky factor L gives
  // the upper factor of H^-1 directly: H = J L L^T J makes H^-1 = U^T U with U = J L^-1 J, upper
  // triangular. One factorization and one triangular inverse, instead of an inverse and a second
  // factorization.
  Eigen::MatrixXd h(in, in);
  for (int64_t p = 0; p < in; ++p)
    for (int64_t q = 0; q < in; ++q)
      h(in - 1 - p, in - 1 - q) = G(b.order[static_cast<size_t>(p)], b.order[static_cast<size_t>(q)]);
  h.diagonal().array() += damp;
  Eigen::LLT<Eigen::Ref<Eigen::MatrixXd>> llt(h);  // in place: h holds L
  check(llt.info() == Eigen::Success, "feedback_basis: the damped Gram matrix is not positive definite");
  Eigen::MatrixXd linv = Eigen::MatrixXd::Identity(in, in);
  h.triangularView<Eigen::Lower>().solveInPlace(linv);
  b.u.resize(in, in);
  for (int64_t p = 0; p < in; ++p)
    for (int64_t q = 0; q < in; ++q) b.u(p, q) = static_cast<float>(linv(in - 1 - p, in - 1 - q));
  return b;
}

/// What round_int4_feedback did: the summed output error e^T G e of the rows before (the codes it
/// was given) and after, and how many rows kept their codes because feedback did not lower their
/// error.
struct FeedbackReport {
  double error_before = 0;  ///< summed e^T G e with the codes given
  double error = 0;         ///< summed e^T G e after
  int64_t rows_kept = 0;    ///< rows left as they were
  int64_t rows = 0;         ///< rows looked at
};

namespace detail {
/// e^T G e for rows [j0, j1) of W [out, in], e the row's error in `r`.
inline Eigen::VectorXd row_output_errors(const FloatRows& w, const Int4Groups& r, const std::vector<double>& gram,
                                         int64_t j0, int64_t j1) {
  using MatrixRd = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const Eigen::Map<const MatrixRd> G(gram.data(), w.cols(), w.cols());
  MatrixRd e(j1 - j0, w.cols());
  for (int64_t j = j0; j < j1; ++j)
    for (int64_t i = 0; i < w.cols(); ++i) e(j - j0, i) = double(r.weight(j, i)) - double(w(j, i));
  return (e * G).cwiseProduct(e).rowwise().sum();
}
}  // namespace detail

/// Re-chooses the codes r.q of W [out, in] on r's grid (its scales and zero points stay) by error
/// feedback against `gram` (see the top of this file); `basis` is feedback_basis(gram). Rows in
/// parallel; the same result for the same thread count (the chunks' products round by their shape).
inline void round_int4_feedback(const FloatRows& w, const std::vector<double>& gram, const FeedbackBasis& basis,
                                Int4Groups& r, FeedbackReport* report = nullptr, ThreadPool& pool = default_pool()) {
  using MatrixRf = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const int64_t out = w.rows(), in = w.cols();
  check(r.out == out && r.in == in && basis.in == in && static_cast<int64_t>(gram.size()) == in * in,
        "round_int4_feedback: W [", out, ", ", in, "] does not match its groups [", r.out, ", ", r.in,
        "], its basis (", basis.in, " inputs) or its Gram matrix (", gram.size(), " values)");
  Eigen::VectorXd before(out), after(out);
  const std::vector<uint8_t> q_before = r.q;
  const auto& U = basis.u;
  pool.parallel_for(out, [&](int64_t j0, int64_t j1) {
    const int64_t n = j1 - j0;
    before.segment(j0, n) = detail::row_output_errors(w, r, gram, j0, j1);
    MatrixRf wt(in, n);  // this chunk's W^T in column order: row p is column order[p]
    for (int64_t p = 0; p < in; ++p)
      for (int64_t c = 0; c < n; ++c) wt(p, c) = w(j0 + c, basis.order[static_cast<size_t>(p)]);
    MatrixRf err(kFeedbackBlock, n);
    for (int64_t b0 = 0; b0 < in; b0 += kFeedbackBlock) {
      const int64_t b1 = std::min(in, b0 + kFeedbackBlock), bs = b1 - b0;
      for (int64_t p = b0; p < b1; ++p) {
        const int64_t i = basis.order[static_cast<size_t>(p)], g = i / r.group;
        for (int64_t c = 0; c < n; ++c) {
          const int64_t j = j0 + c;
          const float s = r.scales[static_cast<size_t>(g * out + j)], z = r.zeros[static_cast<size_t>(g * out + j)];
          const uint8_t level = rtn_level(wt(p, c), s, z);
          r.q[static_cast<size_t>(i * out + j)] = level;
          err(p - b0, c) = (wt(p, c) - (float(level) - z) * s) / U(p, p);
        }
        // the rest of the block at once, the columns past it after the block
        wt.middleRows(p + 1, b1 - p - 1).noalias() -=
            U.row(p).segment(p + 1, b1 - p - 1).transpose() * err.row(p - b0);
      }
      if (b1 < in) wt.bottomRows(in - b1).noalias() -= U.block(b0, b1, bs, in - b1).transpose() * err.topRows(bs);
    }
    after.segment(j0, n) = detail::row_output_errors(w, r, gram, j0, j1);
  }, 8);
  int64_t kept = 0;
  double total_before = 0, total = 0;
  for (int64_t j = 0; j < out; ++j) {
    total_before += before(j);
    if (after(j) <= before(j)) {
      total += after(j);
      continue;
    }
    ++kept;
    total += before(j);
    for (int64_t i = 0; i < in; ++i) r.q[static_cast<size_t>(i * out + j)] = q_before[static_cast<size_t>(i * out + j)];
  }
  if (report) {
    report->error_before += total_before;
    report->error += total;
    report->rows_kept += kept;
    report->rows += out;
  }
}

}  // namespace turbine::quant
