#pragma once
// turbine::Error: the one exception type. Its message is a single line that names what was wrong
// and where (file, tensor, field, flag), so the CLI can print it and exit non-zero.
#include <stdexcept>
#include <string>
#include <sstream>
#include <utility>

namespace turbine {

/// The exception every turbine function throws for bad input: a one-line message naming what was
/// wrong and where.
class Error : public std::runtime_error {
 public:
  /// An error with the message `what`.
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
template <typename... Args>
std::string concat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}
}  // namespace detail

/// Throws turbine::Error with the arguments streamed into one line.
template <typename... Args>
[[noreturn]] void fail(Args&&... args) {
  throw Error(detail::concat(std::forward<Args>(args)...));
}

/// Throws turbine::Error unless `cond` holds.
template <typename... Args>
void check(bool cond, Args&&... args) {
  if (!cond) fail(std::forward<Args>(args)...);
}

}  // namespace turbine
