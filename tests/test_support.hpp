#pragma once
// Helpers shared by the test suites: where test data and the default model live.
#include <cstdio>
#include <filesystem>
#include <string>

namespace turbine::test {

inline std::string data_path(const std::string& rel) { return std::string(TURBINE_TEST_DATA_DIR) + "/" + rel; }

/// The default model, fetched by tools/fetch_model.sh. Empty if it is not there.
inline std::string default_model_path() {
  const std::string p = std::string(TURBINE_DEFAULT_MODEL_DIR) + "/SmolLM2-135M-Instruct.Q4_1.gguf";
  return std::filesystem::exists(p) ? p : std::string();
}

/// Prints a visible skip line (ctest marks the test skipped when it sees "[skipped]").
inline void skip(const std::string& why) { std::printf("[skipped] %s\n", why.c_str()); }

}  // namespace turbine::test
