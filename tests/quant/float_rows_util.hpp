#pragma once
// Random fp32 matrices for the quantization tests (CPU and GPU suites).
#include <cstdint>
#include <random>
#include <turbine/quant/awq_search.hpp>
#include <turbine/quant/int4_groups.hpp>

namespace turbine::test {

/// r x c normal values with standard deviation sd.
inline quant::FloatRows random_rows(int64_t r, int64_t c, std::mt19937& rng, float sd = 1.0f) {
  std::normal_distribution<float> nd(0.0f, sd);
  quant::FloatRows m(r, c);
  for (int64_t i = 0; i < m.size(); ++i) m.data()[i] = nd(rng);
  return m;
}

/// Calibration-like inputs [tokens, in]: a shared component (correlated channels, as real
/// activations are) and a few loud channels.
inline quant::FloatRows correlated_inputs(int64_t tokens, int64_t in, std::mt19937& rng) {
  quant::FloatRows x = random_rows(tokens, in, rng);
  const quant::FloatRows common = random_rows(tokens, 1, rng, 2.0f);
  for (int64_t c = 0; c < in; ++c) x.col(c) += common.col(0);
  for (int64_t c = 0; c < in; c += 37) x.col(c) *= 8.0f;
  return x;
}

/// The mean over the tokens of x of the squared output error of q against the float weights w.
inline double output_error(const quant::FloatRows& x, const quant::FloatRows& w, const quant::Int4Groups& q) {
  const std::vector<float> deq = q.dequantize();
  const Eigen::Map<const quant::FloatRows> wq(deq.data(), w.rows(), w.cols());
  return (x * (wq - w).transpose()).squaredNorm() / static_cast<double>(x.rows());
}

}  // namespace turbine::test
