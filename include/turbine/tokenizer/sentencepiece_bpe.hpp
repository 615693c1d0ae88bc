#pragma once
// SentencePiece-style BPE (Llama-2, InternLM2, Mistral): spaces become U+2581 '▁', the symbols are
// the text's characters, and two neighbours merge when their concatenation is a token. Which pair
// goes first is decided by
//   - token scores (GGUF tokenizer.ggml.model = "llama"): the highest score, as llama.cpp and
//     sentencepiece do; or
//   - merge ranks (Hugging Face tokenizer.json): the lowest rank.
// A character that no token covers falls back to its UTF-8 bytes as <0xNN> tokens, else <unk>.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bpe_merge.hpp"
#include "merge_table.hpp"
#include "unicode.hpp"
#include "vocab.hpp"

namespace turbine {

/// SentencePiece-style BPE (Llama 2, Mistral, InternLM2): merges by score or rank over
/// characters, with byte fallback. One of the two models behind Tokenizer.
class SentencePieceBpeModel {
 public:
  static constexpr std::string_view kSpace = "\xE2\x96\x81";  ///< U+2581, SentencePiece's space

  /// How the model merges and what it does with unknown characters.
  struct Options {
    bool use_scores = true;     ///< false: merge by `merges` rank
    bool byte_fallback = true;  ///< unknown characters as `<0xNN>` tokens when the vocabulary has them
    bool fuse_unk = false;      ///< consecutive `<unk>` become one (Hugging Face fuse_unk)
    int32_t unk = -1;           ///< the unknown token's id; -1: none
  };

  SentencePieceBpeModel() = default;

  /// A model over `tokens` (id -> text) with their `scores` and `types`, or `merges` by rank.
  SentencePieceBpeModel(const std::vector<std::string>& tokens, const std::vector<float>& scores,
                        const std::vector<int32_t>& types, const std::vector<std::string>& merges,
                        const detail::VocabMap& vocab, Options opt, std::string_view source)
      : scores_(scores), opt_(opt) {
    byte_ids_.fill(-1);
    for (size_t i = 0; i < tokens.size(); ++i) {
      const int32_t type = types.empty() ? kTokenNormal : types[i];
      const auto id = static_cast<int32_t>(i);
      // Text only ever merges into ordinary pieces: never into <s>, <unk> or "<0x41>" spelled out.
      if ((type == kTokenNormal || type == kTokenUserDefined) && !tokens[i].empty())
        pieces_.emplace(tokens[i], id);
      const int byte = detail::byte_token_value(tokens[i]);
      if (byte >= 0 && (types.empty() || type == kTokenByte) && byte_ids_[byte] < 0) byte_ids_[byte] = id;
    }
    if (!opt_.use_scores) merges_ = detail::MergeTable(merges, vocab, source);
  }

  /// `text` with spaces as '▁', and a leading '▁' when `prefix`.
  static std::string escape(std::string_view text, bool prefix) {
    std::string s;
    s.reserve(text.size() + 8);
    if (prefix) s += kSpace;
    for (char c : text) {
      if (c == ' ') s += kSpace; else s += c;
    }
    return s;
  }

  /// Appends the ids of escaped text (one segment between special tokens).
  void encode(std::string_view text, std::vector<int32_t>& out, detail::BpeWorkspace& ws) const {
    ws.symbols.clear();
    for (size_t i = 0; i < text.size();) {
      const uint32_t len = unicode::decode_utf8(text, i).len;
      if (opt_.use_scores) {
        detail::bpe_push_symbol(ws, -1, uint32_t(i), len);  // resolved after merging
      } else {
        push_initial_symbol(text, uint32_t(i), len, ws);
      }
      i += len;
    }
    if (opt_.use_scores) {
      detail::bpe_merge(ws, [&](const detail::BpeSymbol& a, const detail::BpeSymbol& b, double& cost, int32_t& id) {
        id = detail::vocab_find(pieces_, text.substr(a.start, a.len + b.len));
        if (id < 0) return false;
        cost = -double(scores_[id]);
        return true;
      });
    } else {
      detail::bpe_merge(ws, [&](const detail::BpeSymbol& a, const detail::BpeSymbol& b, double& cost, int32_t& id) {
        const detail::MergeInfo* m = merges_.find(a.id, b.id);
        if (!m) return false;
        cost = m->rank;
        id = m->id;
        return true;
      });
    }
    if (ws.symbols.empty()) return;
    for (int32_t i = 0; i >= 0; i = ws.symbols[i].next) {
      const detail::BpeSymbol& s = ws.symbols[i];
      int32_t id = s.id;
      if (id < 0 && opt_.use_scores) id = detail::vocab_find(pieces_, text.substr(s.start, s.len));
      if (id >= 0) {
        out.push_back(id);
      } else {
        push_fallback(text.substr(s.start, s.len), out);
      }
    }
  }

  /// Appends the text of a normal token: '▁' back to ' '.
  static void decode_token(std::string_view text, std::string& out) {
    for (size_t i = 0; i < text.size();) {
      if (text.compare(i, kSpace.size(), kSpace) == 0) {
        out += ' ';
        i += kSpace.size();
      } else {
        out += text[i++];
      }
    }
  }

 private:
  bool has_all_bytes(std::string_view ch) const {
    if (!opt_.byte_fallback) return false;
    for (unsigned char b : ch)
      if (byte_ids_[b] < 0) return false;
    return true;
  }

  // Merge-rank mode resolves characters up front, as Hugging Face's BPE model does.
  void push_initial_symbol(std::string_view text, uint32_t start, uint32_t len, detail::BpeWorkspace& ws) const {
    const std::string_view ch = text.substr(start, len);
    if (const int32_t id = detail::vocab_find(pieces_, ch); id >= 0) {
      detail::bpe_push_symbol(ws, id, start, len);
    } else if (has_all_bytes(ch)) {
      for (uint32_t k = 0; k < len; ++k) detail::bpe_push_symbol(ws, byte_ids_[uint8_t(ch[k])], start + k, 1);
    } else if (opt_.unk >= 0) {
      if (opt_.fuse_unk && !ws.symbols.empty() && ws.symbols.back().id == opt_.unk) {
        ws.symbols.back().len += len;
      } else {
        detail::bpe_push_symbol(ws, opt_.unk, start, len);
      }
    }
  }

  void push_fallback(std::string_view ch, std::vector<int32_t>& out) const {
    if (has_all_bytes(ch)) {
      for (unsigned char b : ch) out.push_back(byte_ids_[b]);
    } else if (opt_.unk >= 0) {
      out.push_back(opt_.unk);
    }
  }

  detail::VocabMap pieces_;  // ordinary tokens: what text may become
  std::vector<float> scores_;
  detail::MergeTable merges_;
  std::array<int32_t, 256> byte_ids_{};
  Options opt_;
};

}  // namespace turbine
