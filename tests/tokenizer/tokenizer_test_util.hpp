#pragma once
// Shared by the tokenizer suites: golden JSON files and the default model's vocabulary.
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "test_support.hpp"
#include <turbine/io/gguf.hpp>
#include <turbine/tokenizer/tokenizer.hpp>

namespace turbine::test {

inline nlohmann::json load_json(const std::string& rel) {
  std::ifstream f(data_path(rel), std::ios::binary);
  if (!f) throw Error(data_path(rel) + ": cannot open (run tools/make_tokenizer_goldens.py)");
  std::stringstream ss;
  ss << f.rdbuf();
  return nlohmann::json::parse(ss.str());
}

inline std::vector<int32_t> ids_of(const nlohmann::json& j) { return j.get<std::vector<int32_t>>(); }

/// The tokenizer.ggml.* data of a GGUF file, read with the project's GGUF reader.
inline TokenizerData gguf_tokenizer(const std::string& path) {
  const io::GgufFile f(path);
  TokenizerData d;
  d.source = path;
  const std::string& model = f.get_string("tokenizer.ggml.model");
  d.kind = model == "llama" ? TokenizerData::SentencePieceBpe : TokenizerData::ByteLevelBpe;
  d.tokens = f.get_string_array("tokenizer.ggml.tokens");
  if (f.find("tokenizer.ggml.scores"))
    for (double s : f.get_float_array("tokenizer.ggml.scores")) d.scores.push_back(float(s));
  if (f.find("tokenizer.ggml.token_type"))
    for (int64_t t : f.get_int_array("tokenizer.ggml.token_type")) d.token_types.push_back(int32_t(t));
  if (f.find("tokenizer.ggml.merges")) d.merges = f.get_string_array("tokenizer.ggml.merges");
  d.pre = f.find_string("tokenizer.ggml.pre").value_or("default");
  d.bos = int(f.find_int("tokenizer.ggml.bos_token_id").value_or(-1));
  d.eos = int(f.find_int("tokenizer.ggml.eos_token_id").value_or(-1));
  d.unk = int(f.find_int("tokenizer.ggml.unknown_token_id").value_or(-1));
  d.pad = int(f.find_int("tokenizer.ggml.padding_token_id").value_or(-1));
  if (f.find("tokenizer.ggml.add_bos_token")) d.add_bos = f.get_bool("tokenizer.ggml.add_bos_token");
  if (f.find("tokenizer.ggml.add_space_prefix")) d.add_space_prefix = f.get_bool("tokenizer.ggml.add_space_prefix");
  return d;
}

/// The default model's tokenizer data, or nullopt (after printing "[skipped]") if it is absent.
inline std::optional<TokenizerData> smollm2_tokenizer_data() {
  const std::string path = default_model_path();
  if (path.empty()) {
    skip("default model not found; run tools/fetch_model.sh");
    return std::nullopt;
  }
  return gguf_tokenizer(path);
}

}  // namespace turbine::test
