#pragma once
// Helpers shared by the test suites: fresh seeds, where test data and the default model live, and
// the message of the error a call throws.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <turbine/core/error.hpp>

namespace turbine::test {

/// The message of the turbine::Error that f() throws ("" if it throws none).
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

/// Whether `part` occurs in `s`.
inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

/// A fresh seed for every run, printed so a failure can be replayed.
inline uint32_t fresh_seed(const char* suite) {
  std::random_device rd;
  const uint32_t s = rd();
  std::printf("%s: seed %u\n", suite, s);
  return s;
}

inline std::string data_path(const std::string& rel) { return std::string(TURBINE_TEST_DATA_DIR) + "/" + rel; }

/// The default model, fetched by tools/fetch_model.sh. Empty if it is not there.
inline std::string default_model_path() {
  const std::string p = std::string(TURBINE_DEFAULT_MODEL_DIR) + "/SmolLM2-135M-Instruct.Q4_1.gguf";
  return std::filesystem::exists(p) ? p : std::string();
}

/// Prints a visible skip line (ctest marks the test skipped when it sees "[skipped]").
inline void skip(const std::string& why) { std::printf("[skipped] %s\n", why.c_str()); }

}  // namespace turbine::test
