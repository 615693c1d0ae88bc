#pragma once
// Reads a Hugging Face tokenizer.json (BPE model) into TokenizerData.
//
// Only the configurations of the supported model families are accepted, each recognized by its
// normalizer / pre_tokenizer / decoder definitions:
//   byte-level:    pre_tokenizer ByteLevel (GPT-2 regex), Sequence[Digits, ByteLevel] (SmolLM,
//                  StarCoder) or Sequence[Split(Llama-3 | Qwen2 regex), ByteLevel(use_regex=false)]
//                  (optionally after an NFC normalizer, as Qwen2 has)
//   SentencePiece: normalizer Sequence[Prepend("▁"), Replace(" ", "▁")] (Llama-2 legacy) or
//                  pre_tokenizer Metaspace (newer conversions), byte_fallback
// Anything else fails with the file and the JSON path of the field, rather than tokenizing wrongly.
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/error.hpp"
#include "pretokenize.hpp"
#include "tokenizer_data.hpp"
#include "vocab.hpp"

namespace turbine {

namespace detail {

using Json = nlohmann::json;

/// Field access that fails with "<file>: <path>: ..." instead of nlohmann's exceptions.
class JsonReader {
 public:
  explicit JsonReader(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void error(const std::string& path, const std::string& what) const { fail(source_, ": ", path, ": ", what); }

  const Json& object(const Json& v, const std::string& path) const {
    if (!v.is_object()) error(path, "expected an object");
    return v;
  }
  const Json& array(const Json& v, const std::string& path) const {
    if (!v.is_array()) error(path, "expected an array");
    return v;
  }
  /// Member `key` of object `v`, nullptr when missing or null.
  const Json* member(const Json& v, const char* key) const {
    const auto it = v.find(key);
    return it == v.end() || it->is_null() ? nullptr : &*it;
  }
  std::string string(const Json& v, const std::string& path) const {
    if (!v.is_string()) error(path, "expected a string");
    return v.get<std::string>();
  }
  std::string string_member(const Json& v, const char* key, const std::string& path) const {
    const Json* m = member(v, key);
    if (!m) error(path + "." + key, "missing");
    return string(*m, path + "." + key);
  }
  bool bool_member(const Json& v, const char* key, bool fallback, const std::string& path) const {
    const Json* m = member(v, key);
    if (!m) return fallback;
    if (!m->is_boolean()) error(path + "." + key, "expected true or false");
    return m->get<bool>();
  }
  int64_t int_value(const Json& v, const std::string& path) const {
    if (!v.is_number_integer()) error(path, "expected an integer");
    return v.get<int64_t>();
  }
  std::string type_of(const Json& v, const std::string& path) const { return string_member(object(v, path), "type", path); }

  const std::string& source() const { return source_; }

 private:
  std::string source_;
};

/// What the normalizer, pre_tokenizer and decoder sections say, before deciding the kind.
struct JsonPipeline {
  bool byte_level = false, byte_level_prefix = false;
  bool digits = false;
  std::optional<PreTokenizer> regex;
  bool spm_replace = false, spm_prepend = false;
  bool nfc = false;
  bool metaspace = false;
  std::string metaspace_scheme;  // "always", "first", "never"
};

inline void read_normalizer(const JsonReader& r, const Json& n, const std::string& path, JsonPipeline& p) {
  const std::string type = r.type_of(n, path);
  if (type == "Sequence") {
    const Json* list = r.member(n, "normalizers");
    if (!list) r.error(path + ".normalizers", "missing");
    r.array(*list, path + ".normalizers");
    for (size_t i = 0; i < list->size(); ++i)
      read_normalizer(r, (*list)[i], path + ".normalizers[" + std::to_string(i) + "]", p);
  } else if (type == "NFC") {
    if (p.spm_prepend || p.spm_replace) r.error(path, "NFC after Prepend/Replace is not supported");
    p.nfc = true;
  } else if (type == "Prepend") {
    if (r.string_member(n, "prepend", path) != "\xE2\x96\x81") r.error(path + ".prepend", "only \"\xE2\x96\x81\" is supported");
    p.spm_prepend = true;
  } else if (type == "Replace") {
    const Json* pat = r.member(n, "pattern");
    if (!pat) r.error(path + ".pattern", "missing");
    r.object(*pat, path + ".pattern");
    const Json* s = r.member(*pat, "String");
    if (!s || r.string(*s, path + ".pattern.String") != " " || r.string_member(n, "content", path) != "\xE2\x96\x81")
      r.error(path, "only Replace(\" \" -> \"\xE2\x96\x81\") is supported");
    p.spm_replace = true;
  } else {
    r.error(path + ".type", "normalizer '" + type + "' is not supported");
  }
}

inline void read_pre_tokenizer(const JsonReader& r, const Json& n, const std::string& path, JsonPipeline& p) {
  const std::string type = r.type_of(n, path);
  if (type == "Sequence") {
    const Json* list = r.member(n, "pretokenizers");
    if (!list) r.error(path + ".pretokenizers", "missing");
    r.array(*list, path + ".pretokenizers");
    for (size_t i = 0; i < list->size(); ++i)
      read_pre_tokenizer(r, (*list)[i], path + ".pretokenizers[" + std::to_string(i) + "]", p);
  } else if (type == "ByteLevel") {
    p.byte_level = true;
    p.byte_level_prefix = r.bool_member(n, "add_prefix_space", false, path);
    if (r.bool_member(n, "use_regex", true, path)) {
      if (p.regex) r.error(path + ".use_regex", "a second split regex is not supported");
      p.regex = PreTokenizer::Gpt2;
    }
  } else if (type == "Digits") {
    if (!r.bool_member(n, "individual_digits", false, path))
      r.error(path + ".individual_digits", "only individual_digits = true is supported");
    if (p.regex) r.error(path, "Digits after a split regex is not supported");
    p.digits = true;
  } else if (type == "Split") {
    const Json* pat = r.member(n, "pattern");
    if (!pat) r.error(path + ".pattern", "missing");
    r.object(*pat, path + ".pattern");
    const Json* re = r.member(*pat, "Regex");
    if (!re) r.error(path + ".pattern", "only a Regex pattern is supported");
    PreTokenizer kind;
    if (!pre_tokenizer_from_regex(r.string(*re, path + ".pattern.Regex"), kind))
      r.error(path + ".pattern.Regex", "regex is not one of the GPT-2, Llama-3 or Qwen2 patterns");
    const Json* behavior = r.member(n, "behavior");
    if ((behavior && r.string(*behavior, path + ".behavior") != "Isolated") || r.bool_member(n, "invert", false, path))
      r.error(path + ".behavior", "only behavior Isolated without invert is supported");
    if (p.regex) r.error(path, "a second split regex is not supported");
    p.regex = kind;
  } else if (type == "Metaspace") {
    const Json* rep = r.member(n, "replacement");
    if (rep && r.string(*rep, path + ".replacement") != "\xE2\x96\x81") r.error(path + ".replacement", "only \"\xE2\x96\x81\" is supported");
    if (r.bool_member(n, "split", false, path)) r.error(path + ".split", "split = true is not supported");
    p.metaspace = true;
    const Json* scheme = r.member(n, "prepend_scheme");
    p.metaspace_scheme = scheme ? r.string(*scheme, path + ".prepend_scheme")
                                : (r.bool_member(n, "add_prefix_space", true, path) ? "always" : "never");
    if (p.metaspace_scheme != "always" && p.metaspace_scheme != "first" && p.metaspace_scheme != "never")
      r.error(path + ".prepend_scheme", "unknown scheme '" + p.metaspace_scheme + "'");
  } else {
    r.error(path + ".type", "pre-tokenizer '" + type + "' is not supported");
  }
}

// The decoder only has to be one that undoes what the recognized pipelines do.
inline void check_decoder(const JsonReader& r, const Json& n, const std::string& path) {
  const std::string type = r.type_of(n, path);
  if (type == "Sequence") {
    const Json* list = r.member(n, "decoders");
    if (!list) r.error(path + ".decoders", "missing");
    r.array(*list, path + ".decoders");
    for (size_t i = 0; i < list->size(); ++i) check_decoder(r, (*list)[i], path + ".decoders[" + std::to_string(i) + "]");
  } else if (type == "Replace") {
    const Json* pat = r.member(n, "pattern");
    const Json* s = pat && pat->is_object() ? r.member(*pat, "String") : nullptr;
    if (!s || !s->is_string() || *s != "\xE2\x96\x81" || r.string_member(n, "content", path) != " ")
      r.error(path, "only Replace(\"\xE2\x96\x81\" -> \" \") is supported");
  } else if (type != "ByteLevel" && type != "ByteFallback" && type != "Fuse" && type != "Strip" && type != "Metaspace") {
    r.error(path + ".type", "decoder '" + type + "' is not supported");
  }
}

/// The special token a TemplateProcessing puts before $A, if any (Llama: <s>, Llama-3: <|begin_of_text|>).
inline std::optional<std::string> read_bos_from_post_processor(const JsonReader& r, const Json& n, const std::string& path) {
  const std::string type = r.type_of(n, path);
  if (type == "Sequence") {
    const Json* list = r.member(n, "processors");
    if (!list) r.error(path + ".processors", "missing");
    r.array(*list, path + ".processors");
    std::optional<std::string> bos;
    for (size_t i = 0; i < list->size(); ++i)
      if (auto b = read_bos_from_post_processor(r, (*list)[i], path + ".processors[" + std::to_string(i) + "]")) bos = b;
    return bos;
  }
  if (type == "ByteLevel") return std::nullopt;
  if (type != "TemplateProcessing") r.error(path + ".type", "post-processor '" + type + "' is not supported");
  const Json* single = r.member(n, "single");
  if (!single) r.error(path + ".single", "missing");
  r.array(*single, path + ".single");
  if (single->empty()) return std::nullopt;
  const Json& first = r.object((*single)[0], path + ".single[0]");
  const Json* st = r.member(first, "SpecialToken");
  if (!st) return std::nullopt;  // starts with $A: no BOS (an EOS after $A is not added by encode)
  return r.string_member(r.object(*st, path + ".single[0].SpecialToken"), "id", path + ".single[0].SpecialToken");
}

}  // namespace detail

/// Parses tokenizer.json text; `source` names the file in errors.
inline TokenizerData parse_tokenizer_json(std::string_view text, const std::string& source) {
  using detail::Json;
  const detail::JsonReader r(source);
  const Json root = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) fail(source, ": not valid JSON");
  r.object(root, "(root)");
  const Json* model = r.member(root, "model");
  if (!model) r.error("model", "missing");
  r.object(*model, "model");
  if (const Json* t = r.member(*model, "type"); t && r.string(*t, "model.type") != "BPE")
    r.error("model.type", "model '" + t->get<std::string>() + "' is not supported (only BPE)");
  if (const Json* d = r.member(*model, "dropout"); d && (!d->is_number() || d->get<double>() != 0.0))
    r.error("model.dropout", "BPE dropout is not supported");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (const Json* s = r.member(*model, key); s && r.string(*s, std::string("model.") + key) != "")
      r.error(std::string("model.") + key, "is not supported");

  TokenizerData d;
  d.source = source;

  // Vocabulary (model.vocab) and added tokens, which may extend it.
  const Json* vocab = r.member(*model, "vocab");
  if (!vocab) r.error("model.vocab", "missing");
  r.object(*vocab, "model.vocab");
  const Json* added = r.member(root, "added_tokens");
  if (added) r.array(*added, "added_tokens");
  const size_t n_entries = vocab->size() + (added ? added->size() : 0);
  const auto place = [&](int64_t id, std::string text, const std::string& path) {
    if (id < 0 || size_t(id) >= n_entries) r.error(path, "id " + std::to_string(id) + " is out of range");
    if (size_t(id) >= d.tokens.size()) {
      d.tokens.resize(size_t(id) + 1);
      d.token_types.resize(size_t(id) + 1, kTokenUnused);  // gaps stay unused
    }
    d.tokens[id] = std::move(text);
    d.token_types[id] = kTokenNormal;
  };
  for (auto it = vocab->begin(); it != vocab->end(); ++it)
    place(r.int_value(it.value(), "model.vocab[\"" + it.key() + "\"]"), it.key(), "model.vocab[\"" + it.key() + "\"]");
  if (added) {
    for (size_t i = 0; i < added->size(); ++i) {
      const std::string path = "added_tokens[" + std::to_string(i) + "]";
      const Json& a = r.object((*added)[i], path);
      const Json* idv = r.member(a, "id");
      if (!idv) r.error(path + ".id", "missing");
      const int64_t id = r.int_value(*idv, path + ".id");
      place(id, r.string_member(a, "content", path), path + ".id");
      if (r.bool_member(a, "single_word", false, path)) r.error(path + ".single_word", "single_word = true is not supported");
      const bool special = r.bool_member(a, "special", false, path);
      d.token_types[id] = special ? kTokenControl : kTokenUserDefined;
      d.added.push_back({int32_t(id), special, r.bool_member(a, "lstrip", false, path), r.bool_member(a, "rstrip", false, path)});
    }
  }

  // Merges: "a b" strings or ["a", "b"] pairs.
  if (const Json* merges = r.member(*model, "merges")) {
    r.array(*merges, "model.merges");
    d.merges.reserve(merges->size());
    for (size_t i = 0; i < merges->size(); ++i) {
      const std::string path = "model.merges[" + std::to_string(i) + "]";
      const Json& m = (*merges)[i];
      if (m.is_string()) {
        d.merges.push_back(m.get<std::string>());
      } else {
        if (!m.is_array() || m.size() != 2) r.error(path, "expected \"a b\" or [\"a\", \"b\"]");
        const std::string a = r.string(m[0], path + "[0]"), b = r.string(m[1], path + "[1]");
        if (a.find(' ') != std::string::npos || b.find(' ') != std::string::npos)
          r.error(path, "merge parts containing a space are not supported");
        d.merges.push_back(a + " " + b);
      }
    }
  }

  detail::JsonPipeline p;
  if (const Json* n = r.member(root, "normalizer")) detail::read_normalizer(r, *n, "normalizer", p);
  if (const Json* n = r.member(root, "pre_tokenizer")) detail::read_pre_tokenizer(r, *n, "pre_tokenizer", p);
  if (const Json* n = r.member(root, "decoder")) detail::check_decoder(r, *n, "decoder");

  const bool spm = p.metaspace || p.spm_replace || p.spm_prepend;
  if (p.byte_level == spm)
    r.error("pre_tokenizer", p.byte_level ? "mixes ByteLevel with SentencePiece ('\xE2\x96\x81') steps"
                                          : "neither ByteLevel nor SentencePiece ('\xE2\x96\x81') steps; cannot tell the kind");
  d.byte_fallback = r.bool_member(*model, "byte_fallback", false, "model");
  d.fuse_unk = r.bool_member(*model, "fuse_unk", false, "model");
  d.ignore_merges = r.bool_member(*model, "ignore_merges", false, "model");
  d.nfc = p.nfc;
  if (p.byte_level) {
    d.kind = TokenizerData::ByteLevelBpe;
    d.add_space_prefix = p.byte_level_prefix;
    if (p.digits && p.regex && *p.regex != PreTokenizer::Gpt2)
      r.error("pre_tokenizer", "Digits with the Llama-3/Qwen2 regex is not supported");
    d.pre_tokenizer = p.digits ? (p.regex ? PreTokenizer::DigitsGpt2 : PreTokenizer::Digits)
                               : p.regex.value_or(PreTokenizer::None);
  } else {
    d.kind = TokenizerData::SentencePieceBpe;
    if (p.regex || p.digits) r.error("pre_tokenizer", "a split regex or Digits with SentencePiece is not supported");
    if (p.metaspace && !p.spm_replace && !p.spm_prepend) {
      d.add_space_prefix = p.metaspace_scheme != "never";
      d.space_prefix = p.metaspace_scheme == "first" ? TokenizerData::SpacePrefix::FirstIfMissing
                                                     : TokenizerData::SpacePrefix::IfMissing;
    } else {
      if (!p.spm_replace) r.error("normalizer", "SentencePiece without Replace(\" \" -> \"\xE2\x96\x81\") is not supported");
      d.add_space_prefix = p.spm_prepend;
      d.space_prefix = TokenizerData::SpacePrefix::Always;
    }
    if (d.byte_fallback)  // <0xNN> tokens decode to their byte
      for (size_t i = 0; i < d.tokens.size(); ++i)
        if (d.token_types[i] == kTokenNormal && detail::byte_token_value(d.tokens[i]) >= 0) d.token_types[i] = kTokenByte;
  }

  const auto find_token = [&](const std::string& text, const std::string& path) {
    for (size_t i = 0; i < d.tokens.size(); ++i)
      if (d.tokens[i] == text) return int(i);
    r.error(path, "token '" + text + "' is not in the vocabulary");
  };
  if (const Json* unk = r.member(*model, "unk_token")) {
    d.unk = find_token(r.string(*unk, "model.unk_token"), "model.unk_token");
    if (d.token_types[d.unk] == kTokenNormal) d.token_types[d.unk] = kTokenUnknown;
  }
  if (const Json* pp = r.member(root, "post_processor")) {
    if (auto bos = detail::read_bos_from_post_processor(r, *pp, "post_processor")) {
      d.bos = find_token(*bos, "post_processor");
      d.add_bos = true;
    }
  }
  if (d.tokens.empty()) r.error("model.vocab", "is empty");
  return d;
}

namespace detail {

inline std::string read_text_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, ": cannot open");
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) fail(path, ": read error");
  return ss.str();
}

/// tokenizer_config.json: bos/eos/pad/unk tokens (a string or {"content": ...}) and add_bos_token.
inline void apply_tokenizer_config(const std::string& path, TokenizerData& d) {
  const JsonReader r(path);
  const std::string text = read_text_file(path);
  const Json root = Json::parse(text.begin(), text.end(), nullptr, false);
  if (root.is_discarded()) fail(path, ": not valid JSON");
  r.object(root, "(root)");
  const auto token = [&](const char* key, int& field) {
    const Json* v = r.member(root, key);
    if (!v) return;
    const std::string content = v->is_object() ? r.string_member(*v, "content", key) : r.string(*v, key);
    for (size_t i = 0; i < d.tokens.size(); ++i)
      if (d.tokens[i] == content) {
        field = int(i);
        return;
      }
    r.error(key, "token '" + content + "' is not in the vocabulary of the tokenizer.json");
  };
  token("bos_token", d.bos);
  token("eos_token", d.eos);
  token("pad_token", d.pad);
  token("unk_token", d.unk);
  d.add_bos = r.bool_member(root, "add_bos_token", d.add_bos, "(root)");
}

}  // namespace detail

/// Reads tokenizer.json at `path`, plus tokenizer_config.json in the same directory if present.
inline TokenizerData load_tokenizer_json(const std::string& path) {
  TokenizerData d = parse_tokenizer_json(detail::read_text_file(path), path);
  const auto config = std::filesystem::path(path).parent_path() / "tokenizer_config.json";
  std::error_code ec;
  if (std::filesystem::exists(config, ec)) detail::apply_tokenizer_config(config.string(), d);
  return d;
}

}  // namespace turbine
