#pragma once
// Streams text while watching for stop strings: text that could be the start of a stop string is
// held back until it is known not to be one, so a stop string never reaches the user.
#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

namespace turbine {

/// Cuts streamed text at the first stop string, holding back a tail that might begin one.
class StopChecker {
 public:
  /// A checker for `stops` (none: every piece passes through).
  explicit StopChecker(std::vector<std::string> stops) : stops_(std::move(stops)) {}

  /// Adds newly decoded text; returns the part that is safe to emit now. After a stop string is
  /// seen, stopped() is true and nothing from the stop string on is ever emitted.
  std::string push(std::string_view text) {
    if (stopped_) return {};
    pending_ += text;
    size_t at = std::string::npos;  // the earliest stop string wins
    for (const auto& s : stops_) at = std::min(at, pending_.find(s));
    if (at != std::string::npos) {
      stopped_ = true;
      std::string out = pending_.substr(0, at);
      pending_.clear();
      return out;
    }
    // Keep the longest tail that is a proper prefix of some stop string.
    size_t hold = 0;
    for (const auto& s : stops_)
      for (size_t len = std::min(s.size() - 1, pending_.size()); len > hold; --len)
        if (pending_.compare(pending_.size() - len, len, s, 0, len) == 0) { hold = len; break; }
    std::string out = pending_.substr(0, pending_.size() - hold);
    pending_.erase(0, pending_.size() - hold);
    return out;
  }
  /// Text held back at the end of generation (not a stop string after all).
  std::string flush() {
    std::string out;
    out.swap(pending_);
    return stopped_ ? std::string() : out;
  }
  bool stopped() const { return stopped_; }  ///< whether a stop string was seen

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
};

}  // namespace turbine
