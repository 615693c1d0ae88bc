#pragma once
// Random fp32 matrices for the quantization tests (CPU and GPU suites).
#include <cstdint>
#include <random>
#include <turbine/quant/awq_search.hpp>

namespace turbine::test {

/// r x c normal values with standard deviation sd.
inline quant::FloatRows random_rows(int64_t r, int64_t c, std::mt19937& rng, float sd = 1.0f) {
  std::normal_distribution<float> nd(0.0f, sd);
  quant::FloatRows m(r, c);
  for (int64_t i = 0; i < m.size(); ++i) m.data()[i] = nd(rng);
  return m;
}

}  // namespace turbine::test
