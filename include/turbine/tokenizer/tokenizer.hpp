#pragma once
// turbine::Tokenizer: text <-> token ids for byte-level BPE (GPT-2, Llama-3, Qwen2, SmolLM) and
// SentencePiece-style BPE (Llama-2, InternLM2) vocabularies, from GGUF data or tokenizer.json.
//
//   auto tok = turbine::Tokenizer::from_data(data);          // or from_tokenizer_json(path)
//   std::vector<int32_t> ids = tok.encode("<|im_start|>user\nhi<|im_end|>\n");
//   std::string text = tok.decode(ids);
//
// encode() first cuts out special/added tokens (when parse_special), then pre-tokenizes each text
// segment and runs BPE on each piece. A Tokenizer is immutable after construction, so one object
// may be used from several threads at once.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "../core/error.hpp"
#include "bpe.hpp"
#include "normalize.hpp"
#include "pretokenize.hpp"
#include "special_tokens.hpp"
#include "tokenizer_data.hpp"
#include "tokenizer_json.hpp"
#include "vocab.hpp"

namespace turbine {

/// Text to token ids and back, as Hugging Face tokenizers does for the model: byte-level or
/// SentencePiece-style BPE, pre-tokenizer, normalizer and added/special tokens.
class Tokenizer {
 public:
  /// Builds a tokenizer from plain data (e.g. GGUF tokenizer.ggml.*). Throws turbine::Error
  /// naming `data.source` and the field for inconsistent data.
  static Tokenizer from_data(TokenizerData data) {
    Tokenizer t;
    t.init(std::move(data));
    return t;
  }

  /// Hugging Face tokenizer.json; bos/eos/pad/add_bos come from tokenizer_config.json next to it
  /// when that file exists.
  static Tokenizer from_tokenizer_json(const std::string& path) { return from_data(load_tokenizer_json(path)); }

  /// tokenizer.json given as text; `source` names it in errors.
  static Tokenizer from_tokenizer_json_text(std::string_view json, const std::string& source = "tokenizer.json") {
    return from_data(parse_tokenizer_json(json, source));
  }

  /// Token ids of `text` (bytes; byte-level models encode ill-formed UTF-8 byte by byte, except
  /// bytes the vocabulary has no token for, which are dropped as Hugging Face does). Special tokens written in the text become their ids when parse_special;
  /// otherwise they are ordinary text. A BOS id is prepended when the tokenizer says so.
  std::vector<int32_t> encode(std::string_view text, bool parse_special = true) const {
    std::vector<int32_t> out;
    out.reserve(text.size() / 3 + 2);
    if (data_.add_bos && data_.bos >= 0) out.push_back(data_.bos);
    detail::BpeWorkspace ws;
    std::vector<std::string_view> pieces;
    const auto on_text = [&](std::string_view seg, size_t offset) { encode_segment(seg, offset, out, ws, pieces); };
    const auto on_token = [&](int32_t id) { out.push_back(id); };
    if (specials_.empty()) {
      if (!text.empty()) on_text(text, 0);
    } else {
      specials_.split(text, parse_special, on_text, on_token);
    }
    return out;
  }

  /// Text of `ids`. Ill-formed UTF-8 (e.g. half of a character) becomes U+FFFD, as in Hugging
  /// Face's decode. Throws for an id outside the vocabulary.
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const {
    std::string raw;
    bool at_start = true;
    for (int32_t id : ids) append_piece(id, skip_special, at_start, raw);
    return unicode::sanitize_utf8(raw);
  }

  /// Appends the bytes of one token as decode() renders it; `at_start` (true before the first
  /// token) lets SentencePiece drop the space it added in front of the text. For streaming
  /// decoders (IncrementalDecoder); the bytes may end inside a UTF-8 character.
  void append_piece(int32_t id, bool skip_special, bool& at_start, std::string& out) const {
    check_id(id);
    if (skip_special && special_[id]) return;
    const size_t before = out.size();
    append_token_bytes(id, out);
    if (at_start && out.size() > before) {
      if (strip_leading_space_ && out[before] == ' ') out.erase(before, 1);
      at_start = false;
    }
  }

  /// The token's text as stored in the vocabulary (byte-level: in GPT-2's byte alphabet, "Ġhi").
  const std::string& token_text(int32_t id) const {
    check_id(id);
    return data_.tokens[id];
  }
  /// Id of the token stored as `text`, -1 if there is none.
  int32_t token_id(std::string_view text) const { return detail::vocab_find(vocab_, text); }

  int32_t vocab_size() const { return static_cast<int32_t>(data_.tokens.size()); }  ///< tokens it knows
  int32_t bos_id() const { return data_.bos; }      ///< beginning of sequence; -1: none
  int32_t eos_id() const { return data_.eos; }      ///< end of sequence; -1: none
  int32_t unk_id() const { return data_.unk; }      ///< unknown token; -1: none
  int32_t pad_id() const { return data_.pad; }      ///< padding token; -1: none
  bool add_bos() const { return data_.add_bos; }    ///< whether encode(..., add_special) prepends BOS
  /// Control/unknown tokens and special added tokens: skipped by decode(skip_special = true).
  bool is_special(int32_t id) const {
    check_id(id);
    return special_[id] != 0;
  }
  TokenizerData::Kind kind() const { return data_.kind; }  ///< byte-level or SentencePiece BPE
  PreTokenizer pre_tokenizer() const { return pre_; }      ///< the splitter in use
  const TokenizerData& data() const { return data_; }      ///< what it was built from

 private:
  Tokenizer() = default;

  void check_id(int32_t id) const {
    check(id >= 0 && id < vocab_size(), data_.source, ": token id ", id, " is out of range (vocabulary size ",
          vocab_size(), ")");
  }

  void init(TokenizerData data);

  void encode_segment(std::string_view seg, size_t offset, std::vector<int32_t>& out, detail::BpeWorkspace& ws,
                      std::vector<std::string_view>& pieces) const {
    std::string normalized;
    if (data_.nfc && !unicode::nfc_quick_check(seg)) {
      normalized = unicode::nfc(seg);
      seg = normalized;
    }
    if (data_.kind == TokenizerData::ByteLevelBpe) {
      std::string prefixed;  // Hugging Face ByteLevel(add_prefix_space): " " unless already there
      if (data_.add_space_prefix && seg.front() != ' ') {
        prefixed.reserve(seg.size() + 1);
        prefixed.append(" ").append(seg);
        seg = prefixed;
      }
      pieces.clear();
      pre_tokenize(pre_, seg, pieces);
      for (std::string_view p : pieces) byte_level_.encode(p, vocab_, out, ws);
      return;
    }
    bool prefix = data_.add_space_prefix;
    using SP = TokenizerData::SpacePrefix;
    if (prefix && data_.space_prefix != SP::Always)  // Metaspace looks at the text after ' ' -> '▁'
      prefix = seg.front() != ' ' && seg.substr(0, SentencePieceBpeModel::kSpace.size()) != SentencePieceBpeModel::kSpace;
    if (prefix && data_.space_prefix == SP::FirstIfMissing) prefix = offset == 0;
    sentencepiece_.encode(SentencePieceBpeModel::escape(seg, prefix), out, ws);
  }

  void append_token_bytes(int32_t id, std::string& out) const {
    const std::string& text = data_.tokens[id];
    const int32_t type = data_.token_types.empty() ? kTokenNormal : data_.token_types[id];
    if (type == kTokenNormal || type == 0) {
      if (data_.kind == TokenizerData::ByteLevelBpe) {
        ByteLevelBpeModel::decode_token(text, out);
      } else {
        SentencePieceBpeModel::decode_token(text, out);
      }
    } else if (type == kTokenByte && detail::byte_token_value(text) >= 0) {
      out += static_cast<char>(detail::byte_token_value(text));
    } else {
      out += text;  // control, user-defined, unknown, unused: their text as written
    }
  }

  TokenizerData data_;
  PreTokenizer pre_ = PreTokenizer::None;
  detail::VocabMap vocab_;
  std::vector<uint8_t> special_;  // [vocab]
  detail::SpecialTokenMatcher specials_;
  ByteLevelBpeModel byte_level_;
  SentencePieceBpeModel sentencepiece_;
  bool strip_leading_space_ = false;
};

inline void Tokenizer::init(TokenizerData d) {
  const std::string& src = d.source;
  const size_t n = d.tokens.size();
  check(n > 0, src, ": the vocabulary is empty");
  check(n < (size_t(1) << 31), src, ": vocabulary of ", n, " tokens is too large");
  check(d.token_types.empty() || d.token_types.size() == n, src, ": ", d.token_types.size(),
        " token types for ", n, " tokens");
  for (size_t i = 0; i < d.token_types.size(); ++i)
    check(d.token_types[i] >= 0 && d.token_types[i] <= kTokenByte, src, ": token ", i, " has unknown type ",
          d.token_types[i]);
  check(d.scores.empty() || d.scores.size() == n, src, ": ", d.scores.size(), " scores for ", n, " tokens");
  const auto check_special = [&](int id, const char* what) {
    check(id >= -1 && id < int(n), src, ": ", what, " token id ", id, " is out of range (vocabulary size ", n, ")");
  };
  check_special(d.bos, "bos");
  check_special(d.eos, "eos");
  check_special(d.unk, "unknown");
  check_special(d.pad, "padding");

  vocab_.reserve(n);
  for (size_t i = 0; i < n; ++i)
    if (!d.tokens[i].empty()) vocab_.emplace(d.tokens[i], static_cast<int32_t>(i));  // first wins

  // Special and added tokens.
  special_.assign(n, 0);
  std::vector<detail::SpecialTokenMatcher::Entry> entries;
  if (d.added.empty()) {
    for (size_t i = 0; i < d.token_types.size(); ++i) {
      const int32_t t = d.token_types[i];
      if (t != kTokenControl && t != kTokenUnknown && t != kTokenUserDefined) continue;
      const bool special = t != kTokenUserDefined;
      special_[i] = special;
      if (!d.tokens[i].empty()) entries.push_back({d.tokens[i], int32_t(i), special, false, false});
    }
  } else {
    for (const auto& a : d.added) {
      check(a.id >= 0 && size_t(a.id) < n, src, ": added token id ", a.id, " is out of range (vocabulary size ", n, ")");
      special_[a.id] = a.special;
      if (!d.tokens[a.id].empty()) entries.push_back({d.tokens[a.id], a.id, a.special, a.lstrip, a.rstrip});
    }
  }
  specials_ = detail::SpecialTokenMatcher(std::move(entries));

  if (d.kind == TokenizerData::ByteLevelBpe) {
    pre_ = d.pre_tokenizer ? *d.pre_tokenizer : pre_tokenizer_from_gguf(d.pre);
    const bool ignore_merges = d.ignore_merges || (!d.pre_tokenizer && pre_ == PreTokenizer::Llama3);
    byte_level_ = ByteLevelBpeModel(vocab_, d.merges, ignore_merges, src);
  } else {
    check(d.kind == TokenizerData::SentencePieceBpe, src, ": unknown tokenizer kind ", int(d.kind));
    const bool use_scores = d.merges.empty();
    check(!use_scores || !d.scores.empty(), src, ": a SentencePiece vocabulary needs scores or merges");
    SentencePieceBpeModel::Options opt{use_scores, d.byte_fallback, d.fuse_unk, d.unk};
    sentencepiece_ = SentencePieceBpeModel(d.tokens, d.scores, d.token_types, d.merges, vocab_, opt, src);
    strip_leading_space_ = d.add_space_prefix;
  }
  data_ = std::move(d);
}

}  // namespace turbine

#include "incremental_decoder.hpp"
