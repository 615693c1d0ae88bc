#pragma once
// The facts of tokenizer_config.json and generation_config.json that chat and generation need:
// the chat template, the special-token texts, whether to prepend BOS, and the ids that end a
// reply. Every field is optional because real repositories leave out any of them.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hf_config.hpp"

namespace turbine::io {

/// What turbine reads from a Hugging Face `tokenizer_config.json` (absent fields stay empty).
struct HfTokenizerConfig {
  std::optional<std::string> chat_template;                 ///< the default template (Jinja source)
  std::map<std::string, std::string> named_chat_templates;  ///< all of them, when the file names them
  std::optional<std::string> bos_token;                     ///< token text, e.g. "<s>"
  std::optional<std::string> eos_token;                     ///< token text, e.g. "</s>"
  std::optional<bool> add_bos_token;                        ///< whether encoding prepends BOS
  std::optional<bool> add_eos_token;                        ///< whether encoding appends EOS
};

/// What turbine reads from a Hugging Face `generation_config.json` (absent fields stay empty).
struct HfGenerationConfig {
  std::optional<int64_t> bos_token_id;  ///< the beginning-of-sequence id
  /// Every id that ends a reply: Llama 3 Instruct lists several ([<|end_of_text|>, <|eot_id|>]).
  std::optional<std::vector<int64_t>> eos_token_ids;
  std::optional<float> temperature;         ///< the model's suggested sampling temperature
  std::optional<float> top_p;               ///< the model's suggested nucleus threshold
  std::optional<int64_t> top_k;             ///< the model's suggested top-k
  std::optional<float> repetition_penalty;  ///< the model's suggested repetition penalty
};

namespace detail {

// A special token is written either as its text or as an AddedToken object {"content": ...}.
inline std::optional<std::string> token_text(const JsonFields& f, std::string_view key) {
  const nlohmann::json* v = f.get(key);
  if (!v) return std::nullopt;
  if (v->is_string()) return v->get<std::string>();
  if (v->is_object()) {
    auto it = v->find("content");
    if (it != v->end() && it->is_string()) return it->get<std::string>();
  }
  f.bad(key, "must be a string or an object with a string 'content'");
}

}  // namespace detail

inline HfTokenizerConfig parse_hf_tokenizer_config(const nlohmann::json& j, const std::string& file) {
  const detail::JsonFields f(j, file);
  HfTokenizerConfig c;
  if (const nlohmann::json* t = f.get("chat_template")) {
    if (t->is_string()) {
      c.chat_template = t->get<std::string>();
    } else if (t->is_array()) {  // [{"name": "default", "template": "..."}, {"name": "tool_use", ...}]
      for (const auto& item : *t) {
        const bool ok = item.is_object() && item.contains("name") && item["name"].is_string() &&
                        item.contains("template") && item["template"].is_string();
        if (!ok) f.bad("chat_template", "must be a string or a list of {\"name\", \"template\"} objects");
        c.named_chat_templates[item["name"].get<std::string>()] = item["template"].get<std::string>();
      }
      auto def = c.named_chat_templates.find("default");
      if (def != c.named_chat_templates.end()) c.chat_template = def->second;
    } else {
      f.bad("chat_template", "must be a string or a list of {\"name\", \"template\"} objects");
    }
  }
  c.bos_token = detail::token_text(f, "bos_token");
  c.eos_token = detail::token_text(f, "eos_token");
  if (f.has("add_bos_token")) c.add_bos_token = f.boolean("add_bos_token", false);
  if (f.has("add_eos_token")) c.add_eos_token = f.boolean("add_eos_token", false);
  return c;
}

inline HfGenerationConfig parse_hf_generation_config(const nlohmann::json& j, const std::string& file) {
  const detail::JsonFields f(j, file);
  HfGenerationConfig g;
  if (f.has("bos_token_id")) g.bos_token_id = f.token_id("bos_token_id");
  if (const nlohmann::json* eos = f.get("eos_token_id")) {
    g.eos_token_ids.emplace();
    if (!eos->is_array()) {
      g.eos_token_ids->push_back(f.token_id("eos_token_id"));
    } else {
      // Check each element through a one-element view so errors name the field.
      for (const auto& id : *eos) {
        const nlohmann::json one = {{"eos_token_id", id}};
        g.eos_token_ids->push_back(detail::JsonFields(one, file).token_id("eos_token_id"));
      }
    }
  }
  // Sampling defaults the model's authors chose; 0 is a valid temperature (greedy).
  if (f.has("temperature")) {
    if (!f.get("temperature")->is_number() || f.get("temperature")->get<double>() < 0)
      f.bad("temperature", "must be a non-negative number");
    g.temperature = static_cast<float>(f.get("temperature")->get<double>());
  }
  if (f.has("top_p")) g.top_p = f.positive_float("top_p");
  if (f.has("top_k")) g.top_k = f.non_negative_int("top_k", 0);
  if (f.has("repetition_penalty")) g.repetition_penalty = f.positive_float("repetition_penalty");
  return g;
}

/// Reads <model_dir>/tokenizer_config.json; newer repositories keep the template in
/// chat_template.jinja instead, which is used when the JSON has none. Missing files leave fields empty.
inline HfTokenizerConfig load_hf_tokenizer_config(const std::string& model_dir) {
  namespace fs = std::filesystem;
  const fs::path dir(model_dir);
  std::error_code ec;
  HfTokenizerConfig c;
  if (fs::exists(dir / "tokenizer_config.json", ec)) {
    const std::string file = (dir / "tokenizer_config.json").string();
    c = parse_hf_tokenizer_config(detail::read_json_file(file), file);
  }
  if (!c.chat_template && fs::exists(dir / "chat_template.jinja", ec)) {
    const MappedFile m((dir / "chat_template.jinja").string());
    c.chat_template = m.size() ? std::string(reinterpret_cast<const char*>(m.data()), m.size()) : "";
  }
  return c;
}

/// Reads <model_dir>/generation_config.json; a missing file leaves every field empty.
inline HfGenerationConfig load_hf_generation_config(const std::string& model_dir) {
  const std::string file = (std::filesystem::path(model_dir) / "generation_config.json").string();
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return {};
  return parse_hf_generation_config(detail::read_json_file(file), file);
}

}  // namespace turbine::io
