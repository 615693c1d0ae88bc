#pragma once
// Mean and percentiles of latency samples, shared by `turbine bench generation` and
// `turbine bench throughput`.
#include <algorithm>
#include <vector>

#include <nlohmann/json.hpp>

namespace turbine::cli {

struct Stats {
  double mean = 0, p50 = 0, p90 = 0, p99 = 0;
};
/// Mean and percentiles (linear interpolation between order statistics, as numpy.percentile).
inline Stats stats(std::vector<double> v) {
  Stats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  auto pct = [&](double q) {
    const double pos = q * static_cast<double>(v.size() - 1);
    const size_t lo = static_cast<size_t>(pos);
    const size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
  };
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  s.p50 = pct(0.5);
  s.p90 = pct(0.9);
  s.p99 = pct(0.99);
  return s;
}
inline nlohmann::json to_json(const Stats& s) { return {{"mean", s.mean}, {"p50", s.p50}, {"p90", s.p90}, {"p99", s.p99}}; }

}  // namespace turbine::cli
