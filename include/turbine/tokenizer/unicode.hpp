#pragma once
// UTF-8 decoding/encoding and the character classes the pre-tokenizer regexes need.
//
// Text from users is arbitrary bytes, so decoding never fails: an ill-formed sequence decodes as
// U+FFFD with the length of its "maximal subpart" (Unicode 15, section 3.9, the same rule Python's
// errors="replace" and Rust's from_utf8_lossy use), so lossy conversions here agree with theirs.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "unicode_tables.hpp"

namespace turbine::unicode {

inline constexpr char32_t kReplacement = 0xFFFD;

/// One decoded code point. `len` >= 1 bytes were consumed. `valid` is false for an ill-formed
/// sequence (then cp == U+FFFD); `truncated` additionally says the sequence was a correct prefix
/// cut off by the end of the input (an incremental decoder waits for more bytes in that case).
struct DecodedChar {
  char32_t cp;     ///< the code point (U+FFFD when not valid)
  uint32_t len;    ///< bytes consumed
  bool valid;      ///< false for an ill-formed sequence
  bool truncated;  ///< a correct prefix cut off by the end of the input
};

/// Decodes the code point starting at byte `pos` (< s.size()).
inline DecodedChar decode_utf8(std::string_view s, size_t pos) {
  const auto b = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  const uint8_t b0 = b(pos);
  if (b0 < 0x80) return {b0, 1, true, false};
  uint32_t need;  // continuation bytes after the lead byte
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the first continuation byte (no overlongs/surrogates)
  char32_t cp;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1; cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2; cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3; cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return {kReplacement, 1, false, false};
  }
  for (uint32_t k = 1; k <= need; ++k) {
    if (pos + k >= s.size()) return {kReplacement, k, false, true};
    const uint8_t c = b(pos + k);
    if (c < lo || c > hi) return {kReplacement, k, false, false};
    cp = (cp << 6) | (c & 0x3F);
    lo = 0x80;
    hi = 0xBF;
  }
  return {cp, need + 1, true, false};
}

/// Appends the UTF-8 encoding of `cp` (U+FFFD for surrogates and values above U+10FFFF).
inline void encode_utf8(char32_t cp, std::string& out) {
  if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) cp = kReplacement;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

inline std::string encode_utf8(char32_t cp) {
  std::string s;
  encode_utf8(cp, s);
  return s;
}

inline bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const DecodedChar c = decode_utf8(s, i);
    if (!c.valid) return false;
    i += c.len;
  }
  return true;
}

/// `s` with every ill-formed sequence replaced by U+FFFD (like Python's errors="replace").
inline std::string sanitize_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const DecodedChar c = decode_utf8(s, i);
    if (c.valid) {
      out.append(s.substr(i, c.len));
    } else {
      encode_utf8(kReplacement, out);
    }
    i += c.len;
  }
  return out;
}

/// The classes the GPT-2 / Llama-3 / Qwen2 split patterns distinguish.
enum class CharClass : uint8_t { Other = 0, Letter = 1, Number = 2, Space = 3 };

namespace detail {
// ASCII is by far the most common input, so it skips the binary search.
inline constexpr auto kAsciiClass = [] {
  struct Table { CharClass v[128]; } t{};
  for (int c = 0; c < 128; ++c) {
    CharClass k = CharClass::Other;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) k = CharClass::Letter;
    if (c >= '0' && c <= '9') k = CharClass::Number;
    if ((c >= 0x09 && c <= 0x0D) || c == ' ') k = CharClass::Space;
    t.v[c] = k;
  }
  return t;
}();
}  // namespace detail

/// Class of a code point: \p{L}, \p{N}, \s (Unicode White_Space) or other. Invalid -> Other.
inline CharClass char_class(char32_t cp) {
  if (cp < 128) return detail::kAsciiClass.v[cp];
  if (cp > 0x10FFFF) return CharClass::Other;
  const uint32_t key = (static_cast<uint32_t>(cp) << 2) | 3u;  // last entry whose start <= cp
  const uint32_t* end = std::end(detail::kUnicodeRuns);
  const uint32_t* it = std::upper_bound(std::begin(detail::kUnicodeRuns), end, key);
  return static_cast<CharClass>(*(it - 1) & 3u);
}

inline bool is_letter(char32_t cp) { return char_class(cp) == CharClass::Letter; }
inline bool is_number(char32_t cp) { return char_class(cp) == CharClass::Number; }
inline bool is_space(char32_t cp) { return char_class(cp) == CharClass::Space; }

/// True if `c` equals the ASCII letter `lower` ignoring case, as Oniguruma's (?i) does; the only
/// non-ASCII code point that case-folds to a letter of the contractions is U+017F (long s) -> 's'.
inline bool equals_ignore_case(char32_t c, char lower) {
  if (c == static_cast<char32_t>(lower) || c == static_cast<char32_t>(lower - 'a' + 'A')) return true;
  return lower == 's' && c == 0x017F;
}

}  // namespace turbine::unicode
