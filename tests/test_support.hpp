#pragma once
// Helpers shared by the test suites: where test data and the default model live.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>

namespace turbine::test {

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
