#pragma once
// Hugging Face config.json -> ModelConfig, for the architectures turbine runs. Every field is
// type- and range-checked: a wrong config must fail here with the field's name, not later as a
// shape mismatch or a silently wrong answer.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "../core/error.hpp"
#include "../core/mapped_file.hpp"
#include "../model/config.hpp"

namespace turbine::io {

/// Parses JSON text; syntax errors become a one-line turbine::Error naming `file`, so callers
/// (and fuzzers) handle a single exception type.
inline nlohmann::json parse_json_text(std::string_view text, const std::string& file) {
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    fail(file, ": invalid JSON (", e.what(), ")");
  }
}

namespace detail {

/// A JSON value in an error message: scalars as JSON (truncated), containers by kind only,
/// since dumping a deep structure would recurse.
inline std::string json_summary(const nlohmann::json& v) {
  if (v.is_object()) return "an object";
  if (v.is_array()) return "an array";
  std::string s = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

/// Reads and parses a JSON file (bounded in size); every failure is a turbine::Error.
inline nlohmann::json read_json_file(const std::string& path, size_t max_bytes = 64u << 20) {
  const MappedFile m(path);
  check(m.size() <= max_bytes, path, ": ", m.size(), " bytes is too large for a JSON file");
  return parse_json_text(std::string_view(reinterpret_cast<const char*>(m.data()), m.size()), path);
}

/// Typed access to the fields of one JSON object, failing with "<file>: field '<name>' ...".
/// A field set to null counts as absent, as it does for transformers.
class JsonFields {
 public:
  JsonFields(const nlohmann::json& obj, const std::string& file, std::string prefix = "")
      : obj_(obj), file_(file), prefix_(std::move(prefix)) {
    check(obj.is_object(), file_,
          prefix_.empty() ? ": not a JSON object" : ": field '" + name("") + "' must be an object");
  }

  const nlohmann::json* get(std::string_view key) const {
    auto it = obj_.find(key);
    return it == obj_.end() || it->is_null() ? nullptr : &*it;
  }
  bool has(std::string_view key) const { return get(key) != nullptr; }

  [[noreturn]] void bad(std::string_view key, std::string_view what) const {
    fail(file_, ": field '", name(key), "' ", what, " (got ", json_summary(*get(key)), ")");
  }
  const nlohmann::json& require(std::string_view key) const {
    const nlohmann::json* v = get(key);
    if (!v) fail(file_, ": missing required field '", name(key), "'");
    return *v;
  }

  // Sizes are capped at 2^31 - 1 so that products of two of them fit in int64.
  int64_t integer(std::string_view key, int64_t min, std::string_view what) const {
    const auto& v = require(key);
    if (!v.is_number_integer()) bad(key, what);
    if (v.is_number_unsigned() ? v.get<uint64_t>() > kMaxInt : v.get<int64_t>() > int64_t(kMaxInt))
      bad(key, "is too large (more than 2147483647)");
    if (v.get<int64_t>() < min) bad(key, what);
    return v.get<int64_t>();
  }
  int64_t positive_int(std::string_view key) const { return integer(key, 1, "must be a positive integer"); }
  int64_t positive_int(std::string_view key, int64_t fallback) const {
    return has(key) ? positive_int(key) : fallback;
  }
  int64_t non_negative_int(std::string_view key, int64_t fallback) const {
    return has(key) ? integer(key, 0, "must be a non-negative integer") : fallback;
  }
  /// A token id, or for a list (eos may be one) its first element; -1 when absent or empty.
  int64_t token_id(std::string_view key) const {
    const nlohmann::json* v = get(key);
    if (!v) return -1;
    if (v->is_array() && v->empty()) return -1;
    const nlohmann::json& id = v->is_array() ? v->front() : *v;
    const bool ok = id.is_number_unsigned() ? id.get<uint64_t>() <= kMaxInt
                                            : id.is_number_integer() && id.get<int64_t>() >= 0 &&
                                                  id.get<int64_t>() <= int64_t(kMaxInt);
    if (!ok) bad(key, "must be a token id or a list of them");
    return id.get<int64_t>();
  }
  /// A finite number > 0 that stays > 0 as a float.
  float positive_float(std::string_view key) const {
    const auto& v = require(key);
    if (!v.is_number()) bad(key, "must be a positive number");
    const auto f = static_cast<float>(v.get<double>());
    if (!(f > 0.0f) || !std::isfinite(f)) bad(key, "must be a positive number");
    return f;
  }
  float positive_float(std::string_view key, float fallback) const {
    return has(key) ? positive_float(key) : fallback;
  }
  bool boolean(std::string_view key, bool fallback) const {
    if (!has(key)) return fallback;
    if (!get(key)->is_boolean()) bad(key, "must be true or false");
    return get(key)->get<bool>();
  }
  std::string string(std::string_view key) const {
    if (!require(key).is_string()) bad(key, "must be a string");
    return get(key)->get<std::string>();
  }

  /// The dotted field name for errors ("rope_scaling.factor"); the object itself for "".
  std::string name(std::string_view key) const {
    if (key.empty() && !prefix_.empty()) return prefix_.substr(0, prefix_.size() - 1);
    return prefix_ + std::string(key);
  }
  const nlohmann::json& object() const { return obj_; }
  const std::string& file() const { return file_; }

 private:
  static constexpr uint64_t kMaxInt = 2147483647;
  const nlohmann::json& obj_;
  const std::string& file_;
  std::string prefix_;
};

inline RopeScaling parse_rope_scaling(const JsonFields& f) {
  RopeScaling r;
  // transformers 4 writes "type" (older) or "rope_type"; transformers 5 always "rope_type".
  const char* type_key = f.has("rope_type") ? "rope_type" : f.has("type") ? "type" : nullptr;
  if (!type_key) {
    // A factor without a type would be dropped silently; only a bare rope_theta may stand alone.
    for (const auto& [key, value] : f.object().items())
      if (key != "rope_theta" && !value.is_null())
        fail(f.file(), ": field '", f.name(""), "' has no 'rope_type' (or 'type')");
    return r;
  }
  const std::string type = f.string(type_key);
  if (type == "default") return r;
  if (type == "linear" || type == "dynamic") {
    r.kind = type == "linear" ? RopeScaling::Kind::Linear : RopeScaling::Kind::Dynamic;
  } else if (type == "llama3") {
    r.kind = RopeScaling::Kind::Llama3;
    r.low_freq_factor = f.positive_float("low_freq_factor");
    r.high_freq_factor = f.positive_float("high_freq_factor");
    r.original_max_position_embeddings = f.positive_int("original_max_position_embeddings");
    // The llama3 formula divides by (high - low).
    if (!(r.high_freq_factor > r.low_freq_factor)) f.bad("high_freq_factor", "must exceed low_freq_factor");
  } else {
    f.bad(type_key, "is not supported (supported: default, linear, dynamic, llama3)");
  }
  r.factor = f.positive_float("factor");
  if (r.factor < 1.0f) f.bad("factor", "must be at least 1");
  return r;
}

}  // namespace detail

/// Parses a config.json already read; `file` names it in errors.
inline ModelConfig parse_hf_config(const nlohmann::json& j, const std::string& file) {
  const detail::JsonFields f(j, file);
  ModelConfig c;

  const auto& archs = f.require("architectures");
  if (!archs.is_array() || archs.empty() || !archs[0].is_string())
    f.bad("architectures", "must be a list of architecture names");
  const std::string arch = archs[0].get<std::string>();
  if (arch == "LlamaForCausalLM") c.arch = Architecture::Llama;
  else if (arch == "MistralForCausalLM") c.arch = Architecture::Mistral;
  else if (arch == "Qwen2ForCausalLM") c.arch = Architecture::Qwen2;
  else if (arch == "InternLM2ForCausalLM") c.arch = Architecture::InternLM2;
  else f.bad("architectures", "is not supported (supported: LlamaForCausalLM, MistralForCausalLM, "
                              "Qwen2ForCausalLM, InternLM2ForCausalLM)");

  c.vocab_size = f.positive_int("vocab_size");
  c.hidden_size = f.positive_int("hidden_size");
  c.intermediate_size = f.positive_int("intermediate_size");
  c.num_layers = f.positive_int("num_hidden_layers");
  c.num_heads = f.positive_int("num_attention_heads");
  c.num_kv_heads = f.positive_int("num_key_value_heads", c.num_heads);
  if (f.has("head_dim")) {
    c.head_dim = f.positive_int("head_dim");
  } else {
    if (c.hidden_size % c.num_heads != 0)
      f.bad("num_attention_heads", "must divide hidden_size " + std::to_string(c.hidden_size));
    c.head_dim = c.hidden_size / c.num_heads;
  }
  if (c.head_dim % 2 != 0) f.bad(f.has("head_dim") ? "head_dim" : "num_attention_heads",
                                 "gives an odd head_dim; rotary embeddings need an even one");
  if (c.num_heads % c.num_kv_heads != 0)
    f.bad("num_key_value_heads", "must divide num_attention_heads " + std::to_string(c.num_heads));

  // transformers' per-architecture defaults, for configs that leave them out.
  const int64_t default_max_pos = c.arch == Architecture::Mistral ? 131072
                                  : c.arch == Architecture::Qwen2 ? 32768 : 2048;
  c.max_position_embeddings = f.positive_int("max_position_embeddings", default_max_pos);
  c.rms_norm_eps = f.positive_float("rms_norm_eps", 1e-6f);

  // transformers 5 moves rope_theta and the scaling into "rope_parameters".
  if (f.has("rope_parameters")) {
    const detail::JsonFields rp(f.require("rope_parameters"), file, "rope_parameters.");
    c.rope_theta = rp.positive_float("rope_theta", f.positive_float("rope_theta", 10000.0f));
    c.rope_scaling = detail::parse_rope_scaling(rp);
  } else {
    c.rope_theta = f.positive_float("rope_theta", 10000.0f);
    if (f.has("rope_scaling")) c.rope_scaling = detail::parse_rope_scaling(
        detail::JsonFields(f.require("rope_scaling"), file, "rope_scaling."));
  }

  c.tie_word_embeddings = f.boolean("tie_word_embeddings", false);
  if (f.has("hidden_act") && f.string("hidden_act") != "silu")
    f.bad("hidden_act", "is not supported (supported: silu)");
  switch (c.arch) {
    case Architecture::Llama:
      c.attention_bias = f.boolean("attention_bias", false);
      if (f.boolean("mlp_bias", false)) f.bad("mlp_bias", "is not supported (MLP biases)");
      break;
    case Architecture::Mistral:
      c.sliding_window = f.positive_int("sliding_window", 0);
      break;
    case Architecture::Qwen2:
      c.attention_bias = true;  // Qwen2 always has q/k/v biases
      if (f.boolean("use_sliding_window", false)) {
        // transformers gives the window only to some layers (layer_types, or layers >=
        // max_window_layers); turbine has one window for all layers, so a mix is refused.
        const int64_t window = f.positive_int("sliding_window");
        int64_t sliding = 0;
        if (f.has("layer_types")) {
          const auto& types = f.require("layer_types");
          if (!types.is_array() || int64_t(types.size()) != c.num_layers)
            f.bad("layer_types", "must be a list with one entry per layer");
          for (const auto& t : types) {
            if (!t.is_string()) f.bad("layer_types", "must be a list of strings");
            sliding += t.get<std::string>() == "sliding_attention";
          }
        } else {
          sliding = std::max<int64_t>(0, c.num_layers - f.non_negative_int("max_window_layers", 28));
        }
        if (sliding == c.num_layers) c.sliding_window = window;
        else if (sliding != 0)
          f.bad("use_sliding_window", "applies to some layers only, which is not supported");
      }
      break;
    case Architecture::InternLM2:
      c.attention_bias = f.boolean("bias", true);  // InternLM2Config defaults bias to true
      break;
  }
  c.bos_token_id = f.token_id("bos_token_id");
  c.eos_token_id = f.token_id("eos_token_id");
  if (f.has("quantization_config")) {
    // AutoAWQ's fields (quant_method, bits, group_size, zero_point, version); other methods
    // (GPTQ, bitsandbytes, FP8, ...) store their weights differently and are refused here.
    const detail::JsonFields q(f.require("quantization_config"), file, "quantization_config.");
    const std::string method = q.string("quant_method");
    if (method != "awq") q.bad("quant_method", "is not supported (supported: awq; or use the unquantized model)");
    if (q.positive_int("bits") != 4) q.bad("bits", "is not supported (supported: 4)");
    c.awq_group_size = q.positive_int("group_size");
    if (c.awq_group_size != 32 && c.awq_group_size != 64 && c.awq_group_size != 128)
      q.bad("group_size", "is not supported (supported: 32, 64, 128)");
    if (!q.boolean("zero_point", true)) q.bad("zero_point", "false is not supported (AWQ with zero points only)");
    if (q.has("version")) {
      std::string v = q.string("version");
      for (auto& ch : v) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (v != "gemm") q.bad("version", "is not supported (supported: gemm, AutoAWQ's default packing)");
    }
  }
  return c;
}

/// Parses config.json text (what the fuzzer feeds); JSON syntax errors are turbine::Errors too.
inline ModelConfig parse_hf_config_text(std::string_view text, const std::string& file) {
  return parse_hf_config(parse_json_text(text, file), file);
}

/// Reads config.json; `path` may also be the model directory.
inline ModelConfig load_hf_config(const std::string& path) {
  std::error_code ec;
  const std::string file = std::filesystem::is_directory(path, ec)
                               ? (std::filesystem::path(path) / "config.json").string() : path;
  return parse_hf_config(detail::read_json_file(file), file);
}

}  // namespace turbine::io
