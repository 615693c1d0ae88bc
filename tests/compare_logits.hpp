#pragma once
// Helpers of the whole-model tests: every position's logits of a model (prefill then one token at
// a time) and the relative error between two logit tables.
#include <algorithm>
#include <cmath>
#include <span>
#include <vector>

namespace turbine::test {

/// ||got - want|| / ||want|| in double; infinity if any of `got` is not finite (it never passes).
inline double logits_rel_error(const std::vector<float>& got, const std::vector<float>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    num += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    den += double(want[i]) * want[i];
  }
  return std::sqrt(num / den);
}

/// Every position's logits for `ids`, fed as a prompt chunk of `prefill` tokens then one token at
/// a time (so both the prefill and the decode paths are compared).
template <class Model>
std::vector<float> all_logits(Model& m, const std::vector<int32_t>& ids, size_t prefill) {
  auto cache = m.new_cache(std::max<int64_t>(512, static_cast<int64_t>(ids.size())));  // a small cache unless more is fed
  std::vector<float> out, step;
  m.forward(cache, std::span<const int32_t>(ids).first(prefill), step, true);
  out = step;
  for (size_t i = prefill; i < ids.size(); ++i) {
    m.forward(cache, std::span<const int32_t>(&ids[i], 1), step);
    out.insert(out.end(), step.begin(), step.end());
  }
  return out;
}

}  // namespace turbine::test
