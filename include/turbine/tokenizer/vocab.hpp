#pragma once
// Token types (GGUF's numbering) and the text -> id map looked up with string_views.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace turbine {

/// GGUF `tokenizer.ggml.token_type` values.
enum TokenType : int32_t {
  kTokenNormal = 1,
  kTokenUnknown = 2,
  kTokenControl = 3,
  kTokenUserDefined = 4,
  kTokenUnused = 5,
  kTokenByte = 6,
};

namespace detail {

struct StringHash {
  using is_transparent = void;  // lets find() take a string_view without building a std::string
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

using VocabMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

inline int32_t vocab_find(const VocabMap& m, std::string_view s) {
  const auto it = m.find(s);
  return it == m.end() ? -1 : it->second;
}

/// "<0xNN>" -> NN, or -1 (SentencePiece byte-fallback tokens).
inline int byte_token_value(std::string_view s) {
  if (s.size() != 6 || s.substr(0, 3) != "<0x" || s[5] != '>') return -1;
  const auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int hi = hex(s[3]), lo = hex(s[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

}  // namespace detail
}  // namespace turbine
