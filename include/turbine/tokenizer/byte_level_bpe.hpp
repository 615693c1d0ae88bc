#pragma once
// Byte-level BPE (GPT-2, Llama-3, Qwen2, SmolLM): every byte of a piece is first one symbol, the
// token whose text is that byte's printable stand-in from GPT-2's bytes_to_unicode(); the merge
// list then joins symbols by rank. A byte whose token the vocabulary lacks (SmolLM2 has none for
// 0xC0, 0xF5-0xFF and a few controls) is dropped, as Hugging Face and llama.cpp do.
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

namespace detail {

/// GPT-2's bytes_to_unicode(): printable Latin-1 bytes stand for themselves, the other 68 bytes
/// (controls, space, 0x7F-0xA0, 0xAD) become U+0100 onwards in byte order, so a token is printable.
inline const std::array<char32_t, 256>& byte_to_unicode() {
  static const std::array<char32_t, 256> table = [] {
    std::array<char32_t, 256> t{};
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      t[b] = printable ? char32_t(b) : next++;
    }
    return t;
  }();
  return table;
}

/// Inverse of byte_to_unicode(); -1 for code points that stand for no byte.
inline int unicode_to_byte(char32_t cp) {
  static const std::array<int16_t, 324> table = [] {
    std::array<int16_t, 324> t{};
    t.fill(-1);
    for (int b = 0; b < 256; ++b) t[byte_to_unicode()[b]] = static_cast<int16_t>(b);
    return t;
  }();
  return cp < table.size() ? table[cp] : -1;
}

}  // namespace detail

/// Byte-level BPE (GPT-2, Llama 3, Qwen2, SmolLM): text bytes mapped to GPT-2's byte alphabet,
/// then merged by rank. One of the two models behind Tokenizer.
class ByteLevelBpeModel {
 public:
  ByteLevelBpeModel() = default;

  /// `ignore_merges`: a piece that is itself in the vocabulary is taken whole (Llama-3).
  ByteLevelBpeModel(const detail::VocabMap& vocab, const std::vector<std::string>& merges,
                    bool ignore_merges, std::string_view source)
      : merges_(merges, vocab, source), ignore_merges_(ignore_merges) {
    for (int b = 0; b < 256; ++b) {
      const char byte = static_cast<char>(b);
      byte_ids_[b] = detail::vocab_find(vocab, mapped(std::string_view(&byte, 1)));
    }
  }

  /// Appends the ids of one pre-tokenized piece.
  void encode(std::string_view piece, const detail::VocabMap& vocab, std::vector<int32_t>& out,
              detail::BpeWorkspace& ws) const {
    if (piece.empty()) return;
    if (ignore_merges_) {
      if (const int32_t id = detail::vocab_find(vocab, mapped(piece)); id >= 0) {
        out.push_back(id);
        return;
      }
    }
    ws.symbols.clear();
    for (size_t i = 0; i < piece.size(); ++i)
      detail::bpe_push_symbol(ws, byte_ids_[static_cast<uint8_t>(piece[i])], uint32_t(i), 1);
    detail::bpe_merge(ws, [&](const detail::BpeSymbol& a, const detail::BpeSymbol& b, double& cost, int32_t& id) {
      const detail::MergeInfo* m = merges_.find(a.id, b.id);
      if (!m) return false;
      cost = m->rank;
      id = m->id;
      return true;
    });
    for (int32_t i = 0; i >= 0; i = ws.symbols[i].next)
      if (ws.symbols[i].id >= 0) out.push_back(ws.symbols[i].id);
  }

  /// Appends the bytes a normal token stands for. Like Hugging Face's ByteLevel decoder, a token
  /// with a character outside the byte alphabet is taken as its UTF-8 text unchanged.
  static void decode_token(std::string_view text, std::string& out) {
    const size_t mark = out.size();
    for (size_t i = 0; i < text.size();) {
      const unicode::DecodedChar c = unicode::decode_utf8(text, i);
      const int b = c.valid ? detail::unicode_to_byte(c.cp) : -1;
      if (b < 0) {
        out.resize(mark);
        out.append(text);
        return;
      }
      out += static_cast<char>(b);
      i += c.len;
    }
  }

  /// The vocabulary spelling of raw bytes.
  static std::string mapped(std::string_view bytes) {
    std::string s;
    s.reserve(bytes.size() * 2);
    for (unsigned char b : bytes) unicode::encode_utf8(detail::byte_to_unicode()[b], s);
    return s;
  }

 private:
  detail::MergeTable merges_;
  std::array<int32_t, 256> byte_ids_{};
  bool ignore_merges_ = false;
};

}  // namespace turbine
